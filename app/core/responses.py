"""Answers built on the route's own worker thread, for the busiest routes.

FastAPI validates and serialises the model a plain `def` route returns on a worker thread
of its own, after the route's: a second thread call for every request, about 5% of a
signature's CPU and a second wait in line for a thread under a crowd (issue 10). A route
that returns a Response skips that step, so these routes build theirs from the same
model, on their own thread (signing's, in core.db.in_session), and declare the model as
`response_model` for the API's description. The model is validated when it is built;
the JSON is the same.

A Response returned by a route is sent as it is: headers or a status that a dependency
sets on FastAPI's injected `Response` are not copied onto it. None of these routes'
dependencies sets any; one that did would have to set them on this answer itself.
"""

from __future__ import annotations

from fastapi import Response
from pydantic import BaseModel


def model_response(model: BaseModel, *, status_code: int = 200) -> Response:
    """`model` as the JSON body of a `status_code` answer."""
    return Response(model.model_dump_json(), status_code=status_code, media_type="application/json")
