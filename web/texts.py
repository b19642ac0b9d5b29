"""Danish and English wording of the confirm pages."""

from typing import Final

from domain.approval_state import RequestState
from domain.errors import Refusal

LANGUAGES: Final = ("da", "en")

UI: Final[dict[str, dict[str, str]]] = {
    "da": {
        "page_title": "Budgetansøgning til godkendelse",
        "on_behalf": "på vegne af {name}",
        "ask": "Du bedes tage stilling til ansøgningen som {stage}.",
        "ask_consult": "Du er hørt som {stage}. Dit svar registreres, men et nej afviser ikke "
                       "ansøgningen.",
        "version": "Version",
        "requester": "Ansøger",
        "category": "Kategori",
        "grant": "Bevilling",
        "stage": "Trin",
        "deadline": "Svarfrist",
        "amounts": "Beløb pr. år",
        "year": "År",
        "purpose": "Formål",
        "amount": "Beløb",
        "kind": "Type",
        "recurring": "løbende",
        "one_off": "engangsbeløb",
        "total": "I alt",
        "amounts_note": "Note om beløb",
        "justification": "Begrundelse",
        "changes": "Ændret siden sidste version",
        "approved": "Allerede godkendt i denne version",
        "none_yet": "ingen endnu",
        "comment": "Kommentar (valgfri)",
        "approve": "Godkend",
        "reject": "Afvis",
        "single_use": "Linket kan kun bruges én gang. Du kan også svare direkte på mailen med "
                      "GODKEND eller AFVIS.",
        "done_approve": "Din godkendelse er registreret",
        "done_reject": "Din afvisning er registreret",
        "done_consult": "Dit høringssvar er registreret",
        "next_final_approved": "Ansøgningen er nu endeligt godkendt. {name} får besked på mail.",
        "next_final_rejected": "Ansøgningen er afvist. {name} får besked på mail.",
        "next_sent": "Ansøgningen sendes nu videre til: {names}.",
        "next_waiting": "Ansøgningen venter nu på svar fra: {names}.",
        "next_nothing": "Der er ikke flere svar at vente på lige nu.",
        "your_comment": "Din kommentar",
        "close": "Du kan lukke siden.",
        "footer": "Bevilling – Borgmesterens Afdeling, Aarhus Kommune",
        "decision_approve": "godkendt",
        "decision_reject": "afvist",
        "via": "via {channel}",
        "channel_link": "link",
        "channel_mail": "mail",
    },
    "en": {
        "page_title": "Budget request for approval",
        "on_behalf": "on behalf of {name}",
        "ask": "Please decide on this request as {stage}.",
        "ask_consult": "You are consulted as {stage}. Your answer is recorded, but a no does not "
                       "reject the request.",
        "version": "Version",
        "requester": "Requester",
        "category": "Category",
        "grant": "Grant",
        "stage": "Stage",
        "deadline": "Answer by",
        "amounts": "Amounts per year",
        "year": "Year",
        "purpose": "Purpose",
        "amount": "Amount",
        "kind": "Type",
        "recurring": "recurring",
        "one_off": "one-off",
        "total": "Total",
        "amounts_note": "Note on amounts",
        "justification": "Justification",
        "changes": "Changed since the previous version",
        "approved": "Already approved in this version",
        "none_yet": "nobody yet",
        "comment": "Comment (optional)",
        "approve": "Approve",
        "reject": "Reject",
        "single_use": "This link works once. You can also reply to the mail with APPROVE or "
                      "REJECT.",
        "done_approve": "Your approval has been recorded",
        "done_reject": "Your rejection has been recorded",
        "done_consult": "Your consultation answer has been recorded",
        "next_final_approved": "The request is now finally approved. {name} is told by mail.",
        "next_final_rejected": "The request is rejected. {name} is told by mail.",
        "next_sent": "The request now goes on to: {names}.",
        "next_waiting": "The request now waits for: {names}.",
        "next_nothing": "There is nobody else to wait for right now.",
        "your_comment": "Your comment",
        "close": "You can close this page.",
        "footer": "Bevilling – Borgmesterens Afdeling, Aarhus Kommune",
        "decision_approve": "approved",
        "decision_reject": "rejected",
        "via": "via {channel}",
        "channel_link": "link",
        "channel_mail": "mail",
    },
}

# Refusal reason (the enum, never a message text) → (heading, explanation); {placeholders}
# are filled from the refusal's facts.
REFUSALS: Final[dict[str, dict[Refusal, tuple[str, str]]]] = {
    "da": {
        Refusal.INVALID: ("Linket virker ikke",
                    "Linket er ugyldigt eller blev beskadiget undervejs. Kopiér hele linket fra "
                    "mailen, eller svar i stedet direkte på mailen med GODKEND eller AFVIS."),
        Refusal.EXPIRED: ("Linket er udløbet",
                    "Linket kan ikke længere bruges. Brug linket i den nyeste mail om "
                    "ansøgningen, eller kontakt sekretariatet."),
        Refusal.USED: ("Linket er allerede brugt",
                 "Hvert link kan kun bruges én gang. Brug linket i den nyeste mail om "
                 "ansøgningen."),
        Refusal.DECIDED: ("Du har allerede svaret",
                    "Dit svar på ansøgningen {key} er registreret: {decision} {when}. Et svar kan "
                    "ikke ændres her."),
        Refusal.OUTDATED: ("Ansøgningen er blevet ændret",
                     "Ansøgningen {key} er ændret, efter mailen blev sendt (nu version "
                     "{version}). Et svar på den gamle version tæller ikke. Er dit svar "
                     "nødvendigt for den nye version, får du en ny mail."),
        Refusal.SKIPPED: ("Dit svar er ikke længere nødvendigt",
                    "Trinnet »{stage}« for ansøgningen {key} er afgjort uden dit svar."),
        Refusal.CLOSED: ("Ansøgningen er afsluttet",
                   "Ansøgningen {key} er {state}, så der kan ikke længere svares på den."),
        Refusal.INACTIVE: ("Trinnet er ikke åbent",
                     "Dit trin for ansøgningen {key} venter ikke på svar lige nu."),
        Refusal.REQUESTER: ("Du kan ikke afgøre din egen ansøgning",
                      "Du har selv søgt om {key}, så en anden skal godkende den. Trinnet er "
                      "ikke ændret."),
        Refusal.NOT_APPROVER: ("Trinnet er ikke dit",
                         "Kun godkenderen eller dennes stedfortræder i dag kan afgøre trinnet "
                         "for ansøgningen {key}."),
    },
    "en": {
        Refusal.INVALID: ("This link does not work",
                    "The link is invalid or was damaged on the way. Copy the whole link from "
                    "the mail, or reply to the mail with APPROVE or REJECT instead."),
        Refusal.EXPIRED: ("This link has expired",
                    "The link can no longer be used. Use the link in the latest mail about the "
                    "request, or contact the secretariat."),
        Refusal.USED: ("This link has been used",
                 "Each link works once. Use the link in the latest mail about the request."),
        Refusal.DECIDED: ("You have already answered",
                    "Your answer on request {key} is recorded: {decision} {when}. An answer "
                    "cannot be changed here."),
        Refusal.OUTDATED: ("The request has changed",
                     "Request {key} was changed after the mail was sent (now version "
                     "{version}). An answer to the old version does not count. If your answer "
                     "is needed for the new version, you will get a new mail."),
        Refusal.SKIPPED: ("Your answer is no longer needed",
                    "The stage “{stage}” of request {key} was settled without your answer."),
        Refusal.CLOSED: ("The request is closed",
                   "Request {key} is {state}, so it can no longer be answered."),
        Refusal.INACTIVE: ("This stage is not open",
                     "Your stage of request {key} is not waiting for an answer right now."),
        Refusal.REQUESTER: ("You cannot decide your own request",
                      "You asked for {key} yourself, so someone else must approve it. The "
                      "stage is unchanged."),
        Refusal.NOT_APPROVER: ("This stage is not yours",
                         "Only the approver or their substitute today can decide the stage "
                         "of request {key}."),
    },
}

_R = RequestState
REQUEST_STATES: Final[dict[str, dict[RequestState, str]]] = {
    "da": {_R.APPROVED: "godkendt", _R.REJECTED: "afvist", _R.WITHDRAWN: "trukket tilbage",
           _R.DRAFT: "ikke indsendt", _R.PENDING: "under behandling"},
    "en": {_R.APPROVED: "approved", _R.REJECTED: "rejected", _R.WITHDRAWN: "withdrawn",
           _R.DRAFT: "not submitted", _R.PENDING: "pending"},
}


def language_of(value: str | None) -> str:
    """'en' for English-speaking approvers, otherwise Danish."""
    return value if value in LANGUAGES else "da"
