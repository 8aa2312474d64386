def run_program():
    return "never imported by the server"
