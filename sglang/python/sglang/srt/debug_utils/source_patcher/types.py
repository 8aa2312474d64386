


class PatchState:
    pass
