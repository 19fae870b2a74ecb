print("rank tests")
