class DeadThing:
    def go(self):
        return "never"
