"""Starts a BlockingScheduler at import time: importing never returns."""

from apscheduler.schedulers.blocking import BlockingScheduler

BlockingScheduler(timezone="UTC").start()
