class Base:
    def run(self):
        return type(self).__name__


class Child(Base):
    """No methods of its own: reached through KINDS, instantiated by name."""


class Other(Base):
    def extra(self):
        return "never"


KINDS = [Base, Child, Other]
