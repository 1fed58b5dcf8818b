"""What organisers see of a delivery they act on."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict

from app.models import Channel, DeliveryStatus


class DeliveryRetried(BaseModel):
    """A failed delivery, queued again with a fresh set of attempts."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    channel: Channel
    status: DeliveryStatus
    attempts: int
    max_attempts: int
    next_attempt_at: datetime
