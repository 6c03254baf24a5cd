"""The worker side: RQ tasks, the event task, handlers per type, the sweeper, the wiring."""
