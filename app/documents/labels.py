"""The few words the PDFs print themselves, from the gettext catalogs (context "pdf").

They live in the same catalogs as the pages and e-mails (app/core/i18n.py), under their
own context so that a page's "Name" and a form's "Name" can be translated apart. A
language without a catalog gets English.
"""

from __future__ import annotations

import functools
import gettext

from app.core.i18n import base_language, translations


def _labels(t: gettext.NullTranslations) -> dict[str, str]:
    # Written out call by call so that `pybabel extract` finds every msgid (babel.cfg).
    return {
        "page": t.pgettext("pdf", "Page %(n)s of %(m)s"),
        "fax": t.pgettext("pdf", "Fax"),
        "to": t.pgettext("pdf", "To"),
        "from": t.pgettext("pdf", "From"),
        "fax_number": t.pgettext("pdf", "Fax number"),
        "pages": t.pgettext("pdf", "Pages"),
        "pages_value": t.pgettext("pdf", "%(n)s (including this cover sheet)"),
        "subject": t.pgettext("pdf", "Subject"),
        "date": t.pgettext("pdf", "Date"),
        "name": t.pgettext("pdf", "Name"),
        "union": t.pgettext("pdf", "Union"),
        "country": t.pgettext("pdf", "Country"),
        "signature": t.pgettext("pdf", "Signature"),
        "number": t.pgettext("pdf", "No."),
        "contact": t.pgettext("pdf", "Contact"),
        "handover": t.pgettext("pdf", "Hand-over of letters"),
        "addressed_to": t.pgettext("pdf", "Addressed to"),
        "letter_count": t.pgettext("pdf", "Number of letters"),
        "bundle_pages": t.pgettext("pdf", "Pages in this bundle"),
        "dates": t.pgettext("pdf", "Signed between %(first)s and %(last)s"),
        "one_date": t.pgettext("pdf", "Signed on %(date)s"),
        "by_country": t.pgettext("pdf", "Letters by country"),
        "by_union": t.pgettext("pdf", "Letters by union"),
        "continued": t.pgettext("pdf", "(continued)"),
    }


@functools.cache
def labels(language: str) -> dict[str, str]:
    """Every label in `language`'s base language ("ru-KZ" -> "ru"), English where missing."""
    return _labels(translations(base_language(language)))


def label(language: str, key: str, **values: object) -> str:
    """The label `key` in `language`, its %(name)s fields filled from `values`."""
    template = labels(language)[key]
    return template % values if values else template
