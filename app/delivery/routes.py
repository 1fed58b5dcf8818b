"""JSON API for organisers acting on deliveries."""

from __future__ import annotations

from fastapi import APIRouter

from app.core.db import SessionDep
from app.core.deps import Organiser
from app.core.errors import error_responses
from app.delivery import service
from app.delivery.deps import OrganiserDelivery
from app.delivery.schemas import DeliveryRetried
from app.models import utcnow

# Every route here waits its turn for the database (admission.py): 503 when it cannot.
router = APIRouter(prefix="/api/v1/deliveries", tags=["delivery"], responses=error_responses(503))


@router.post(
    "/{delivery_id}/retry", status_code=202, responses=error_responses(401, 403, 404, 409, 422)
)
def retry(session: SessionDep, who: Organiser, delivery: OrganiserDelivery) -> DeliveryRetried:
    """Queue a failed or bounced delivery again (an admin, or a union for its own letters);
    401 without credentials, 403 out of scope, 404 unknown, 409 if it neither failed nor
    bounced."""
    service.retry(session, delivery, now=utcnow(), by=who.label)
    return DeliveryRetried.model_validate(delivery)
