import dataclasses


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


class Unbuilt(Base):
    """Named by kept code (an isinstance check) but its constructor never ran and nothing deriving
    from it ran: no instance existed, so no method stays, only its class-level names."""

    LABEL = "unbuilt"

    def __init__(self):
        self.ready = True

    def __repr__(self):
        return "Unbuilt()"

    def run(self):
        return "never"

    def _legacy(self):
        return "never"

    legacy = _legacy  # named by its own body: stays with it


class UnbuiltChild(Unbuilt):
    def __init__(self):
        super().__init__()


class Built(Base):
    """Its constructor never ran, but a subclass was put to work: the family's methods stay."""

    def __init__(self):
        self.ready = True

    def run(self):
        return "built"


class BuiltChild(Built):
    def __init__(self):  # does not call Built.__init__
        self.ready = False


class UnbuiltError(Exception):
    """Never raised in a recording: an exception keeps its members (error paths are the surface)."""

    def __init__(self, detail):
        super().__init__(f"failed: {detail}")


@dataclasses.dataclass
class Record:
    name: str

    def __post_init__(self):
        self.name = self.name.strip()

    def describe(self):  # a dataclass's own methods are plain methods: never run, it goes
        return f"record {self.name}"
