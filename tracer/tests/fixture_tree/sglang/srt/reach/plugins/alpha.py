from sglang.srt.reach.base import Base


class Alpha(Base):
    def run(self):
        return "alpha"
