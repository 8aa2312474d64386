"""A frontend-language program (`import sglang as sgl`) against a running server, for the companions
scenario: a chat-templated greedy gen, a select scored through the native API's logprobs, and a batch
of two programs, with the sglang.utils helpers upstream's docs wrap servers in. Usage: python3
frontend_lang.py BASE_URL (exit 0 when every program ran)."""

import sys

from sglang.utils import print_highlight, wait_for_server

import sglang as sgl


@sgl.function
def question_and_check(s, question):
    s += sgl.user(question)
    s += sgl.assistant(sgl.gen("answer", max_tokens=8, temperature=0))
    s += sgl.user("Is that right? Answer yes or no.")
    s += sgl.assistant(sgl.select("verdict", choices=["yes", "no"]))


def main(base_url: str) -> None:
    wait_for_server(base_url, timeout=60)
    sgl.set_default_backend(sgl.RuntimeEndpoint(base_url))
    state = question_and_check.run(question="What is the capital of France?")
    print_highlight(f"{state['answer']!r} {state['verdict']}")
    states = question_and_check.run_batch([{"question": "Name a color."}, {"question": "Name a number."}])
    print([(s["answer"], s["verdict"]) for s in states])


if __name__ == "__main__":
    main(sys.argv[1])
