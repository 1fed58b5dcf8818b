"""JSON API for organisers acting on deliveries."""

from __future__ import annotations

from fastapi import APIRouter

from app.core.db import SessionDep
from app.delivery import service
from app.delivery.schemas import DeliveryRetried
from app.models import utcnow
from app.organisers.deps import OrganiserToken

router = APIRouter(prefix="/api/v1/deliveries", tags=["delivery"])


@router.post("/{delivery_id}/retry", status_code=202)
def retry(session: SessionDep, token: OrganiserToken, delivery_id: int) -> DeliveryRetried:
    """Queue a failed delivery again (an admin token, or a union token for its own letters);
    401 without a valid token, 403 out of scope, 404 unknown, 409 if it has not failed."""
    delivery = service.retry_for(session, delivery_id=delivery_id, token=token, now=utcnow())
    return DeliveryRetried.model_validate(delivery)
