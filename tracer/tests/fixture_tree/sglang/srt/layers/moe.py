import json
import os

CONFIG_DIR = os.path.join(os.path.dirname(__file__), "configs")


def load_config(name):
    with open(os.path.join(CONFIG_DIR, name)) as f:
        return json.load(f)
