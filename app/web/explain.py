"""What went wrong, said on a page in the supporter's language.

The API answers in English. A page translates by the kind of problem: pydantic's
error type, a type of our own (app/core/text.py, app/letters/schemas.py), or an
InvalidInput's code. For a kind the catalog does not know it shows the API's text.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from babel.numbers import format_decimal

from app.appeals.templating import LetterTemplateError
from app.core import i18n
from app.core.errors import InvalidInput, OutcryError, error_text, field_name
from app.core.security import PASSWORD_MIN


def N_(message: str) -> str:
    """Marks `message` for `pybabel extract`; it is translated where it is shown."""
    return message


# The errors a page can show whole, by their text (which is also the msgid): each
# error's default text, and the fixed texts the code raises them with.
# tests/web/test_explain.py checks that both kinds are all here.
PAGE_DETAILS = frozenset(
    {
        N_("Bad request."),
        N_("Not found."),
        N_("No such appeal."),
        N_("No such letter, or the key is wrong."),
        N_("No such delivery."),
        N_("No such bounce."),
        N_("Not ready for this yet; please try again later."),
        N_("Not an Amazon SNS address."),
        N_("The webhook's credentials are wrong."),
        N_("The webhook's signature is wrong."),
        N_("The webhook's signature has expired."),
        N_("The webhook is not signed."),
        N_("Not a topic this site subscribed to."),
        N_("The signing certificate is not an Amazon SNS one."),
        N_("Unknown signature version."),
        N_("The signing certificate is not an RSA one."),
        N_("The message's signature is wrong."),
        N_("The subscription link is not an Amazon SNS one."),
        N_("This confirmation link is not valid. It may have expired."),
        N_("This appeal is not taking signatures."),
        N_("This appeal's letter cannot be written just now. Please tell its organisers."),
        N_("This e-mail address has already signed this appeal."),
        N_("Only a failed or bounced delivery can be retried."),
        N_("Some fields are not valid."),
        N_("A valid token is required."),
        N_("The e-mail address or the password is wrong."),
        N_("This token may not do that."),
        N_("The form has expired or did not come from this site. Please try again."),
        N_("The request body is too large."),
        N_("Too many requests; try again later."),
        N_("Outcry cannot take this request right now; nothing was stored. Try again."),
        N_(
            "Too many people are using Outcry at this moment; nothing was stored. "
            "Please send it again in a few seconds."
        ),
        N_("Outcry's database is not answering; nothing was stored. Please try again in a minute."),
        N_("Test sends are only for appeals that have not opened yet."),
        N_("This letter is not waiting for moderation."),
        N_("No such letter."),
        N_("No such organiser."),
        N_("The token is not valid."),
        N_("Log in, or send a valid token."),
        N_("This needs an admin."),
        N_("This needs an admin token."),
        N_("Test sends go to your own address: log in as an admin organiser."),
        N_("Your organisation does not take part in this appeal."),
        N_("This letter was not signed through your organisation."),
        N_("A union token sees only its own organisation's letters."),
        N_("This page is for organisers who log in; a token has no account."),
        N_(
            "Several confirmation e-mails have gone to this address today already. Please "
            "look for them, in your spam folder too, or try again tomorrow."
        ),
        N_(
            "This letter has already gone to its targets and cannot be withdrawn. You can "
            "still erase your details."
        ),
        N_("This letter is being sent at this moment. Please try again in a few minutes."),
        N_("This letter will not be sent anyway: there is nothing to withdraw."),
        N_("The details of this letter have been erased."),
        N_("Only a closed appeal's letters can be purged."),
        N_("There is an organiser account with this address already."),
        N_("This invitation link is not valid: it has been used, or it has expired."),
        N_("This is the last admin account: invite another admin first."),
        N_("The appeal cannot move to that status from the one it has."),
    }
)

# One sentence for each kind of problem with a field, whatever the field.
REASONS = {
    "missing": N_("Please fill this in."),
    "single_line": N_("Please keep this to one line, without control characters."),
    "email_syntax": N_("This is not a valid e-mail address."),
    "email_undeliverable": N_("Mail cannot be delivered to this address. Please check it."),
    "country_code": N_("Please choose your country from the list."),
    "language_code": N_("Please choose a language from the list."),
    "language_offered": N_("Please choose one of the languages this letter is written in."),
    "wrong_password": N_("This is not your current password."),
    "password_mismatch": N_("The two new passwords are not the same."),
    # The appeal editor's (app/appeals/schemas.py, texts.py, files.py).
    "fax_number": N_("Please give the number in international form, starting with +."),
    "default_language": N_("Please list the default language among the languages."),
    "letter_or_template": N_("Please write the letter here, or name a template file."),
    "letter_missing": N_("Please write the letter in every language of the appeal."),
    "unreachable": N_("At least one target needs an e-mail address or a fax number."),
    "closes_before_opens": N_("The closing time must be after the opening time."),
    "default_text": N_("Please give this text in the appeal's default language (the first one)."),
    "stray_language": N_("This text is in a language the appeal is not offered in."),
    "yaml": N_("This is not an appeal file: YAML with slug, title, languages and so on."),
    "slug_pattern": N_(
        "Please use lower-case letters, digits and hyphens (like almaty-coach-factory)."
    ),
    "datetime": N_("Please give a date and time."),
    "number": N_("Please give a whole number."),
    "too_small": N_("Please give a larger number."),
    "too_large": N_("Please give a smaller number."),
    "list_too_short": N_("Please add at least one."),
    "slug_taken": N_("There is an appeal with this name already: choose another."),
}
# Pydantic's own kinds that mean one of ours above.
SAME_AS = {
    "string_pattern_mismatch": "slug_pattern",
    "datetime_from_date_parsing": "datetime",
    "datetime_parsing": "datetime",
    "int_parsing": "number",
    "greater_than_equal": "too_small",
    "less_than_equal": "too_large",
}
# email-validator says exactly what is wrong with an address, in English only: on an
# English page its sentence is more use than ours.
DETAILED_IN_ENGLISH = frozenset({"email_syntax", "email_undeliverable"})


def error_message(exc: OutcryError, lang: str) -> str:
    """The error's text for a page: translated when it is one of the texts above (a text
    made up at the raise, naming a value, stays as it is)."""
    if exc.detail in PAGE_DETAILS:
        return i18n.translations(lang).gettext(exc.detail)
    return exc.detail


def reason(kind: str, context: Mapping[str, Any], lang: str, english: str) -> str:
    """One problem with a field as a sentence in `lang`; `english` (the API's text) for a
    kind the pages do not know."""
    t = i18n.translations(lang)
    # A length checked after a field's own validator (OneLine strips first) is pydantic's
    # too_short/too_long; on our text fields it is a number of characters all the same.
    kind = {"too_short": "string_too_short", "too_long": "string_too_long"}.get(kind, kind)
    if kind == "string_too_short" and context.get("field_type") == "List":
        kind = "list_too_short"
    kind = SAME_AS.get(kind, kind)
    if kind == "password_too_short":
        kind, context = "string_too_short", {"min_length": PASSWORD_MIN}
    if kind == "string_too_short" and context.get("min_length") == 1:
        kind = "missing"
    if lang == "en" and kind in DETAILED_IN_ENGLISH:
        return english
    if kind in REASONS:
        return t.gettext(REASONS[kind])
    if kind == "string_too_short":
        n = int(context["min_length"])
        return t.ngettext(
            "Please use at least %(num)s character.", "Please use at least %(num)s characters.", n
        ) % {"num": format_decimal(n, locale=lang)}
    if kind == "string_too_long":
        n = int(context["max_length"])
        return t.ngettext(
            "Please use at most %(num)s character.", "Please use at most %(num)s characters.", n
        ) % {"num": format_decimal(n, locale=lang)}
    return english


def field_errors(errors: Iterable[Mapping[str, Any]], lang: str) -> dict[str, str]:
    """Pydantic's errors as {field: sentence in `lang`}, the first for each field."""
    said: dict[str, str] = {}
    for error in errors:
        field = field_name(tuple(error.get("loc", ())))
        english = error_text(error)
        kind = str(error.get("type", ""))
        said.setdefault(field, reason(kind, error.get("ctx") or {}, lang, english))
    return said


def input_errors(exc: InvalidInput, lang: str) -> dict[str, str]:
    """An InvalidInput's fields as {field: sentence in `lang`}."""
    return {
        field: reason(exc.codes.get(field, ""), {}, lang, why) for field, why in exc.fields.items()
    }


def template_error(exc: LetterTemplateError, lang: str) -> str:
    """A letter that does not render, said in `lang`: the part, the line, and which
    variable is wrong and what could be written instead."""
    t = i18n.translations(lang)
    part = exc.where.rsplit(".", 1)[-1] if exc.where.startswith("letter.") else ""
    place = {"subject": t.gettext("Subject"), "body": t.gettext("Body")}.get(part, exc.where)
    if exc.line:
        place = t.gettext("%(place)s, line %(line)s") % {"place": place, "line": exc.line}
    p = exc.params
    if exc.kind == "no_attribute":
        what = t.gettext("“%(variable)s.%(name)s” does not exist; %(variable)s has %(offered)s") % p
    elif exc.kind == "undefined":
        what = t.gettext("there is no variable “%(name)s”; a letter can use %(offered)s") % p
    elif exc.kind == "syntax":
        what = t.gettext("the template cannot be read: %(message)s") % p
    elif exc.kind == "not_found":
        what = t.gettext("there is no such file")
    else:
        return str(exc)
    return f"{place}: {what}"
