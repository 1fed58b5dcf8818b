"""The Celery app: Redis carries delivery ids; the database decides what is sent.

Made here so `outcry worker` and `outcry beat` can start it; its tasks live in
workers/tasks.py, named to Celery by module path (app/ never imports workers/)."""

from __future__ import annotations

from celery import Celery
from kombu import Queue

from app.core.config import get_settings
from app.delivery.dispatch import SEND_QUEUE, SWEEP_QUEUE, SWEEP_TASK


def make_celery() -> Celery:
    settings = get_settings()
    app = Celery("outcry", broker=settings.broker_url or "redis://127.0.0.1:6379/0")
    app.conf.update(
        # Ack after the task ran, and give the task back if the worker process dies,
        # so a SIGKILL mid-send leaves the id in Redis for another worker.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=4,
        task_ignore_result=True,
        task_serializer="json",
        accept_content=["json"],
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
        # Sweeps have a queue of their own: behind thousands of sends they would come
        # too late to recover anything.
        task_default_queue=SEND_QUEUE,
        task_queues=(Queue(SEND_QUEUE), Queue(SWEEP_QUEUE)),
        task_routes={SWEEP_TASK: {"queue": SWEEP_QUEUE}},
        beat_schedule={
            "sweep": {
                "task": SWEEP_TASK,
                "schedule": settings.sweep_interval,
                # A sweep that waited longer than the next one is no use: drop it.
                "options": {"expires": settings.sweep_interval},
            },
        },
        imports=("workers.tasks",),
    )
    return app


celery_app = make_celery()
