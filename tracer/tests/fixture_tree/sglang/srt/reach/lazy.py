def fn():
    return "lazy"
