from syncagent.cli import main

# Guarded: a worker process started with "spawn" imports this module again under another name.
if __name__ == "__main__":
    main()
