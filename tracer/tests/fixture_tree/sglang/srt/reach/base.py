class Base:
    def run(self):
        return type(self).__name__


class Child(Base):
    """No methods of its own: reached through KINDS, instantiated by name."""


class Other(Base):
    def extra(self):
        return "never"


KINDS = [Base, Child, Other]


class Shell(Base):
    """Named by kept code (an isinstance check) but never put to work: only implicit members stay."""

    def __repr__(self):
        return "Shell()"

    def run(self):
        return "never"

    def describe(self):
        return "never"
