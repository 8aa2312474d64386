"""Seed -> request specs: random endpoints, request fields and sampling parameters, some malformed,
in batches sent at once. Pure: the same inventory and seed give the same list."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass

from slim.errors import SlimError
from slim.fuzz.values import (
    MODEL_PLACEHOLDER,
    NO_VALUE,
    NOT_FUZZED,
    OUT_OF_RANGE,
    PROMPTS,
    known_value,
    typed_value,
    wrong_type,
)

MALFORMED_SHARE = 0.15
MALFORMATIONS = ("wrong_type", "out_of_range", "unknown_field", "bad_json")
MAX_BATCH = 16
MAX_DELAY_S = 0.5  # a request starts up to this late in its batch: it joins a running batch
MAX_FIELDS = 4  # optional fields (and, for /generate, sampling parameters) per request

# POST routes fuzzed -> the request model whose fields they take, and how often they are picked.
ROUTE_MODELS = {
    "/generate": ("GenerateReqInput", 4),
    "/v1/chat/completions": ("ChatCompletionRequest", 4),
    "/v1/completions": ("CompletionRequest", 2),
    "/v1/messages": ("AnthropicMessagesRequest", 1),
    "/v1/responses": ("ResponsesRequest", 1),
    "/tokenize": ("TokenizeRequest", 1),
    "/detokenize": ("DetokenizeRequest", 1),
}
# Read-only GETs; admin routes that change server state are left to a fixed workload.
CHEAP_GETS = ("/health", "/get_model_info", "/get_server_info", "/v1/models", "/get_load", "/metrics")
GET_WEIGHT = 2  # all GETs together, against the POST weights above


@dataclass(frozen=True)
class RequestSpec:
    id: int
    batch: int  # requests of one batch are in flight together
    delay_s: float  # when it starts after its batch does
    method: str
    path: str
    fields: tuple[str, ...]  # inventory ids this request uses (route first)
    malformed: str | None  # "kind:field" (kind one of MALFORMATIONS; bad_json alone), or None
    body: str | None  # the raw body (not always JSON: "bad_json"); MODEL_PLACEHOLDER for the model's name


@dataclass(frozen=True)
class Surface:
    """The inventory's fuzzable part: routes present, fields per request model, sampling parameters."""

    routes: frozenset[str]  # "POST /generate"
    fields: dict[str, dict[str, str]]  # model -> field name -> annotation text
    sampling: dict[str, str]  # sampling parameter -> annotation text


def surface_of(inventory: dict) -> Surface:
    """Routes, request fields by model, and sampling parameters from an inventory's items."""
    routes, fields, sampling = set(), {}, {}
    for item in inventory["items"]:
        kind, ident = item.get("kind"), item.get("id", "")
        if kind == "route":
            routes.add(ident.removeprefix("route:"))
        elif kind == "field":
            model, _, name = ident.removeprefix("field:").rpartition(".")
            if name not in NOT_FUZZED:
                fields.setdefault(model, {})[name] = item.get("type", "")
        elif kind == "sampling_param":
            sampling[ident.removeprefix("sampling:")] = item.get("type", "")
    return Surface(frozenset(routes), fields, sampling)


def _value(model: str, name: str, annotation: str, rng: random.Random) -> object:
    value = known_value(model, name, rng)
    return typed_value(annotation, rng) if value is NO_VALUE else value


def _base_body(path: str, rng: random.Random) -> dict:
    """The smallest valid body of a route: short prompt, a few new tokens."""
    prompt, tokens = rng.choice(PROMPTS), rng.randint(1, 16)
    chat = [{"role": "user", "content": prompt}]
    return {"/generate": {"text": prompt, "sampling_params": {"max_new_tokens": tokens}},
            "/v1/chat/completions": {"model": MODEL_PLACEHOLDER, "messages": chat, "max_tokens": tokens},
            "/v1/completions": {"model": MODEL_PLACEHOLDER, "prompt": prompt, "max_tokens": tokens},
            "/v1/messages": {"model": MODEL_PLACEHOLDER, "messages": chat, "max_tokens": tokens},
            "/v1/responses": {"model": MODEL_PLACEHOLDER, "input": prompt, "max_output_tokens": tokens},
            "/tokenize": {"model": MODEL_PLACEHOLDER, "prompt": prompt},
            "/detokenize": {"model": MODEL_PLACEHOLDER, "tokens": [rng.randint(10, 1000) for _ in range(4)]},
            }[path]


def _pick(rng: random.Random, options: dict[str, str], model: str, ids: str) -> dict[str, tuple[str, object]]:
    """Up to MAX_FIELDS of `options` that have a value: name -> (inventory id, value)."""
    chosen = {}
    for name in rng.sample(sorted(options), min(len(options), rng.randint(0, MAX_FIELDS))):
        value = _value(model, name, options[name], rng)
        if value is not NO_VALUE:
            chosen[name] = (ids.format(model=model, name=name), value)
    return chosen


def _malform(kind: str, body: dict, where: dict, allowed: dict[str, str],
             rng: random.Random) -> tuple[str, str | None]:
    """Break one thing in `where` (the body or its sampling_params; `allowed`: the fields it takes).
    Returns what was broken ("kind:field") and, for bad_json, the raw text to send instead."""
    in_range = sorted(name for name in OUT_OF_RANGE if name in allowed)
    if kind == "out_of_range" and in_range:
        name = rng.choice(in_range)
        where[name] = OUT_OF_RANGE[name](rng)
    elif kind in ("wrong_type", "out_of_range"):
        kind, name = "wrong_type", rng.choice(sorted(where))
        where[name] = wrong_type(where[name], rng)
    elif kind == "unknown_field":
        name = "slim_fuzz_unknown_field"
        where[name] = 1
    else:
        text = json.dumps(body, sort_keys=True)
        return kind, text[: rng.randint(1, len(text) - 1)]
    return f"{kind}:{name}", None


def _post_spec(path: str, surface: Surface, rng: random.Random, malformed: str | None) -> dict:
    model = ROUTE_MODELS[path][0]
    body = _base_body(path, rng)
    used = [f"route:POST {path}"]
    for name, (item_id, value) in _pick(rng, surface.fields.get(model, {}), model, "field:{model}.{name}").items():
        if name == "sampling_params":
            continue  # filled from the sampling parameters below
        body[name] = value
        used.append(item_id)
    if path == "/generate":
        picked = _pick(rng, surface.sampling, "SamplingParams", "sampling:{name}")
        body["sampling_params"].update({name: value for name, (_, value) in picked.items()})
        used += [item_id for item_id, _ in picked.values()]
    raw = None
    if malformed:
        native = path == "/generate"  # its sampling parameters sit in a dict of their own
        where, allowed = ((body["sampling_params"], surface.sampling) if native
                          else (body, surface.fields.get(model, {})))
        malformed, raw = _malform(malformed, body, where, allowed, rng)
    return {"method": "POST", "path": path, "fields": tuple(used), "malformed": malformed,
            "body": raw if raw is not None else json.dumps(body, sort_keys=True)}


def _routes(surface: Surface) -> tuple[list[str], list[float]]:
    """The fuzzed routes the inventory has, with their weights."""
    posts = [p for p in ROUTE_MODELS if f"POST {p}" in surface.routes]
    gets = [p for p in CHEAP_GETS if f"GET {p}" in surface.routes]
    if not posts:
        raise SlimError("the surface inventory has none of the fuzzed POST routes "
                        f"({', '.join(ROUTE_MODELS)}): not an sglang HTTP inventory")
    weights = [ROUTE_MODELS[p][1] for p in posts] + [GET_WEIGHT / max(len(gets), 1)] * len(gets)
    return posts + gets, weights


def generate(inventory: dict, seed: int, n: int) -> list[RequestSpec]:
    """n request specs for `seed`, in batches of 1..MAX_BATCH."""
    if n < 1:
        raise SlimError(f"--fuzz needs at least one request, not {n}")
    surface = surface_of(inventory)
    paths, weights = _routes(surface)
    rng = random.Random(seed)
    specs, batch = [], 0
    while len(specs) < n:
        for first in range(min(rng.randint(1, MAX_BATCH), n - len(specs))):
            path = rng.choices(paths, weights)[0]
            malformed = rng.choice(MALFORMATIONS) if rng.random() < MALFORMED_SHARE else None
            if path in ROUTE_MODELS:
                spec = _post_spec(path, surface, rng, malformed)
            else:
                spec = {"method": "GET", "path": path, "fields": (f"route:GET {path}",), "malformed": None,
                        "body": None}
            delay = 0.0 if first == 0 else round(rng.uniform(0, MAX_DELAY_S), 2)
            specs.append(RequestSpec(id=len(specs), batch=batch, delay_s=delay, **spec))
        batch += 1
    return specs
