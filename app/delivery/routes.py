"""JSON API for organisers acting on deliveries."""

from __future__ import annotations

from fastapi import APIRouter

from app.core.db import SessionDep
from app.delivery import service
from app.delivery.schemas import DeliveryRetried
from app.models import utcnow
from app.organisers.deps import OrganiserDelivery

router = APIRouter(prefix="/api/v1/deliveries", tags=["delivery"])


@router.post("/{delivery_id}/retry", status_code=202)
def retry(session: SessionDep, delivery: OrganiserDelivery) -> DeliveryRetried:
    """Queue a failed or bounced delivery again (an admin, or a union for its own letters);
    401 without credentials, 403 out of scope, 404 unknown, 409 if it neither failed nor
    bounced."""
    service.retry(session, delivery, now=utcnow())
    return DeliveryRetried.model_validate(delivery)
