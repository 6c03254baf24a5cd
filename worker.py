"""The worker process from a checkout: `python -u worker.py [--burst] [--processes N] ...`.

A thin entry to `receiver.processes.worker.main`, which the installed wheel also runs as the
console script `receiver-worker` (the Procfile's worker line).
"""

from receiver.processes.worker import main

if __name__ == "__main__":
    main()
