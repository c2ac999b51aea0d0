"""EHR launch context: what the EHR has open (patient, encounter) when it launches an app.

The legacy EHR cannot call us, so ``fhir-facade launch --patient ID`` stands in for
it: it stores a context under a random, single-purpose ``launch`` value and prints
the app's launch URL (``<launch_url>?iss=<FHIR base>&launch=<value>``). The app sends
``launch`` back in its authorization request, and the token response carries the
context. Launch values expire after an hour.
"""

from __future__ import annotations

import secrets
from urllib.parse import urlencode

from facade.smart.store import SmartStore

LAUNCH_LIFETIME = 3600


def create_launch(store: SmartStore, patient: str | None, encounter: str | None = None) -> str:
    if not patient and not encounter:
        raise ValueError("a launch needs a patient and/or an encounter")
    launch = secrets.token_urlsafe(24)
    store.save_launch(launch, {"patient": patient, "encounter": encounter}, LAUNCH_LIFETIME)
    return launch


def launch_url(app_launch_url: str, fhir_base: str, launch: str) -> str:
    separator = "&" if "?" in app_launch_url else "?"
    return app_launch_url + separator + urlencode({"iss": fhir_base, "launch": launch})
