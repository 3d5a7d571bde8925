"""``GET /users/{id}/mailFolders/{folder}/messages``: a folder by its well-known name or its id; Sent Items
and Deleted Items hold mail (``reclaim.lab.extras``), the others none."""

from __future__ import annotations

from reclaim.lab import http, odata
from reclaim.lab.data import Record
from reclaim.lab.http import HttpError, LabView, Request, Response
from reclaim.lab.odata import BOOL, DT, Field, S

PERMISSIONS = {"users/mailFolders/messages": ("Mail.Read", "Mail.ReadWrite")}
WELL_KNOWN_FOLDERS = ("sentitems", "deleteditems", "inbox", "drafts", "junkemail", "archive", "outbox")
# What Graph documents as supporting $filter, as far as needed.
_FIELDS: dict[str, Field] = {
    "receivedDateTime": DT, "sentDateTime": DT, "createdDateTime": DT, "lastModifiedDateTime": DT,
    "subject": S, "internetMessageId": S, "isDraft": BOOL, "isRead": BOOL, "hasAttachments": BOOL,
    "importance": S, "from/emailAddress/address": S, "sender/emailAddress/address": S, "conversationId": S,
}  # fmt: skip


def list_messages(lab: LabView, request: Request) -> Response:
    name = "users/mailFolders/messages"
    query = request.query
    http.check_options(query, http.EXPANDABLE)
    http.refuse_expand(query, name)
    http.require(lab, PERMISSIONS[name], f"read {name}")
    state = lab.tenant.extras
    who, folder = request.args["user"], request.args["folder"]
    user = lab.tenant.user(who)
    if user is None:
        raise HttpError(404, "ErrorInvalidUser", f"The requested user '{who}' is invalid.")
    owner = str(user["userPrincipalName"]).lower()
    wanted = folder.casefold()
    if wanted not in WELL_KNOWN_FOLDERS:
        wanted = next((f for (o, f), i in state.folder_ids.items() if o == owner and i == folder), "")
        if not wanted:
            raise HttpError(400, "ErrorInvalidIdMalformed", "Id is malformed.")
    flt = odata.parse_filter(query.get("$filter"), _FIELDS, "message")
    order = odata.parse_orderby(query.get("$orderby"), ("receivedDateTime", "sentDateTime"))
    messages = state.folders.get((owner, wanted), [])

    def compute() -> list[Record]:
        found = [m for m in messages if flt is None or flt.match(m)]
        if order is not None:
            found.sort(key=lambda m: str(m.get(order[0]) or ""), reverse=order[1])
        return found

    context = f"{http.metadata(lab, request)}users('{user['id']}')/mailFolders('{folder}')/messages"
    return http.page(lab, request, context, compute, always=("@odata.etag", "id"))
