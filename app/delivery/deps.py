"""Request dependencies that load a delivery for an organiser who may see it."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from app.core import auth
from app.core.db import SessionDep
from app.core.deps import Organiser
from app.core.params import RowId
from app.delivery import service
from app.models import Delivery


def organiser_delivery(session: SessionDep, who: Organiser, delivery_id: RowId) -> Delivery:
    """The delivery if `who` may see its letter: 404 if none, 403 if out of scope."""
    delivery = service.find_delivery(session, delivery_id)
    if delivery.letter is None:
        raise AssertionError("find_delivery finds the deliveries of letters")
    auth.check_letter(who, delivery.letter)
    return delivery


OrganiserDelivery = Annotated[Delivery, Depends(organiser_delivery)]
