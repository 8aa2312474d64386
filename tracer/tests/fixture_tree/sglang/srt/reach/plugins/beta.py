from sglang.srt.reach.base import Base


class Beta(Base):
    def run(self):
        return "beta"
