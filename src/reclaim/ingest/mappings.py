"""How each export's records become rows of the normalized tables, written as SQL.

A mapping has an explicit ``json_transform`` schema for the record and one SQL expression
per normalized column over the resulting struct ``j``. ``{time}`` in an expression is the
time-parsing macro chosen for the file's date order. ``lets`` are values over ``j`` that
several columns need (a nested JSON cell parsed once, not once per column).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from reclaim.case.schema import KV

V = "VARCHAR"
J = "JSON"  # kept as JSON: an object, an array, or JSON text inside a string (CSV cells)


@dataclass(frozen=True)
class Mapping:
    name: str
    table: str
    schema: dict[str, Any]
    columns: dict[str, str]
    time_fields: tuple[str, ...] = ()
    source: str = "rec"  # SQL over the record text giving the JSON to transform
    where: str | None = None  # SQL over ``rec``: which records this mapping takes
    lets: dict[str, str] = field(default_factory=dict)
    expands: bool = False  # a record may give several rows, or none (an unnest in ``lets``)

    def select(self, time_macro: str, relation: str) -> str:
        """Normalized rows from ``relation`` (record_no, line_no, rec, ok)."""
        where = "" if self.where is None else f" AND {self.where}"
        return self.select_parsed(
            time_macro,
            f"(SELECT record_no, line_no, rec, {self.transform()} AS j FROM {relation} WHERE ok{where})",
        )

    def select_parsed(self, time_macro: str, relation: str, keys: str = "record_no, line_no") -> str:
        """Normalized rows from ``relation`` (``keys``, rec, j), j already parsed; the key columns
        (where each row comes from) lead."""
        exprs = ",\n    ".join(
            f'{expr.replace("{time}", time_macro)} AS "{col}"' for col, expr in self.columns.items()
        )
        lets = "".join(f", {expr} AS {name}" for name, expr in self.lets.items())
        return f"SELECT {keys},\n    {exprs}\nFROM (SELECT {keys}, rec, j{lets} FROM {relation})"

    @property
    def reads_whole_records(self) -> bool:
        """True when every record is this mapping's, as it stands, one row each (no wrapper, no routing):
        DuckDB's own readers number the rows as records."""
        return self.source == "rec" and self.where is None and not self.expands

    def duckdb_type(self) -> str:
        """The explicit schema as a DuckDB type, for DuckDB's own JSON reader."""
        return _duckdb_type(self.schema)

    def transform(self) -> str:
        """The record as a struct of the explicit schema; of a key given twice, the last value."""
        schema = json.dumps(self.schema).replace("'", "''")
        paths = ", ".join(f"'{p}'" for p in _object_paths(self.schema))
        return f"json_transform(rc_last_keys({self.source}, [{paths}]), '{schema}')"


def _object_paths(schema: dict[str, Any], path: str = "$") -> list[str]:
    """JSON paths of the record and of each object (not array) the schema reads in it."""
    found = [path]
    for key, value in schema.items():
        if isinstance(value, dict):
            found += _object_paths(value, f"{path}.{key}")
    return found


def _duckdb_type(schema: Any) -> str:
    if isinstance(schema, str):
        return schema
    if isinstance(schema, list):
        return _duckdb_type(schema[0]) + "[]"
    fields = ", ".join(f'"{k}" {_duckdb_type(v)}' for k, v in schema.items())
    return f"STRUCT({fields})"


# -- Unified Audit Log (Management Activity API, Purview CSV AuditData, Graph auditData) ----
UAL_SCHEMA: dict[str, Any] = {
    "CreationTime": V, "Id": V, "RecordType": V, "Workload": V, "Operation": V, "UserId": V, "UserKey": V,
    "ClientIP": V, "ClientIPAddress": V, "ActorIpAddress": V, "UserAgent": V,
    "ClientInfoString": V, "SessionId": V, "AppAccessContext": {"AADSessionId": V, "ClientAppId": V},
    "ObjectId": V, "ResultStatus": V, "MailboxOwnerUPN": V, "AppId": V, "ClientAppId": V,
    "ApplicationId": V, "LogonType": V, "ErrorNumber": V, "LogonError": V,
    "Parameters": [{"Name": V, "Value": V}], "ExtendedProperties": [{"Name": V, "Value": V}],
    "OperationProperties": [{"Name": V, "Value": V}],
    "ModifiedProperties": [{"Name": V, "OldValue": V, "NewValue": V}],
    "Item": {"Subject": V, "ParentFolder": {"Path": V}}, "Folder": {"Path": V},
    "AffectedItems": [{"Subject": V}], "Target": [{"ID": V}],
}  # fmt: skip

UAL_COLUMNS = {
    "time": "{time}(j.CreationTime)",
    "record_id": "j.Id",
    "record_type": "rc_record_type(j.RecordType)",
    "workload": "j.Workload",
    "operation": "j.Operation",
    "user_id": "lower(j.UserId)",
    "client_ip": "rc_ip(coalesce(j.ClientIP, j.ClientIPAddress, j.ActorIpAddress))",
    # CASE, not coalesce: the list is searched only for records without a UserAgent field
    # and with ExtendedProperties (Entra logons); a lambda costs even on an empty list
    "user_agent": "CASE WHEN j.UserAgent IS NOT NULL THEN j.UserAgent "
    "WHEN len(j.ExtendedProperties) > 0 THEN list_filter("
    "j.ExtendedProperties, lambda e: lower(e.Name) = 'useragent')[1].Value END",
    "client_info": "j.ClientInfoString",
    "session_id": "coalesce(j.SessionId, j.AppAccessContext.AADSessionId)",
    "object_id": "j.ObjectId",
    "result_status": "j.ResultStatus",
    "mailbox_owner": "lower(j.MailboxOwnerUPN)",
    "app_id": "coalesce(j.AppId, j.ClientAppId, j.ApplicationId, j.AppAccessContext.ClientAppId)",
    "logon_type": "try_cast(j.LogonType AS INTEGER)",
    "error_number": "coalesce(j.ErrorNumber, j.LogonError)",
    # a cast, not a lambda: struct fields match by name, case-insensitively, and it is cheap
    "parameters": f"CAST(j.Parameters AS {KV})",
    # UpdateInboxRules (Outlook) describes the rule in OperationProperties; few records have
    # them, and concatenating lists for every record would cost a fifth of the ingest
    "extended_properties": f"CASE WHEN j.OperationProperties IS NULL THEN CAST(j.ExtendedProperties AS {KV}) "
    f"ELSE list_concat(CAST(j.ExtendedProperties AS {KV}), CAST(j.OperationProperties AS {KV})) END",
    "modified_properties": "list_transform(j.ModifiedProperties, lambda e: "
    "{'name': e.Name, 'old_value': e.OldValue, 'new_value': e.NewValue})",
    "item_subject": "j.Item.Subject",
    "item_folder": "coalesce(j.Item.ParentFolder.Path, j.Folder.Path)",
    "affected_count": "len(j.AffectedItems)",
    "affected_subjects": "list_transform(j.AffectedItems, lambda x: x.Subject)",
    "target_ids": "list_transform(j.Target, lambda x: x.ID)",
    "user_key": "lower(rc_nz(j.UserKey))",
}

UAL = Mapping("ual", "audit", UAL_SCHEMA, UAL_COLUMNS)
# Search-UnifiedAuditLog objects and Graph auditLogRecord carry the UAL record inside.
UAL_IN_AUDITDATA = Mapping(
    "ual", "audit", UAL_SCHEMA, UAL_COLUMNS, source="rc_obj(json_extract(rec, '$.AuditData'))"
)
UAL_IN_GRAPH = Mapping(
    "ual", "audit", UAL_SCHEMA, UAL_COLUMNS, source="rc_obj(json_extract(rec, '$.auditData'))"
)

# -- Sentinel / Log Analytics OfficeActivity -------------------------------------------
OFFICE_ACTIVITY = Mapping(
    "office-activity",
    "audit",
    {
        "TimeGenerated": V,
        "Start_Time": V,
        "OfficeId": V,
        "SourceRecordId": V,
        "RecordType": V,
        "OfficeWorkload": V,
        "Operation": V,
        "UserId": V,
        "UserKey": V,
        "ClientIP": V,
        "Client_IPAddress": V,
        "ActorIpAddress": V,
        "UserAgent": V,
        "ClientInfoString": V,
        "SessionId": V,
        "OfficeObjectId": V,
        "ResultStatus": V,
        "MailboxOwnerUPN": V,
        "AppId": V,
        "Logon_Type": V,
        "Parameters": J,
        "ExtendedProperties": J,
        "ModifiedProperties": J,
        "Item": J,
        "Folder": J,
        "AffectedItems": J,
    },
    {
        "time": "coalesce({time}(j.TimeGenerated), {time}(j.Start_Time))",
        "record_id": "coalesce(rc_nz(j.OfficeId), rc_nz(j.SourceRecordId))",
        "record_type": "rc_record_type(rc_nz(j.RecordType))",
        "workload": "rc_nz(j.OfficeWorkload)",
        "operation": "rc_nz(j.Operation)",
        "user_id": "lower(rc_nz(j.UserId))",
        "client_ip": "rc_ip(coalesce(rc_nz(j.ClientIP), rc_nz(j.Client_IPAddress), rc_nz(j.ActorIpAddress)))",
        "user_agent": "coalesce(rc_nz(j.UserAgent), rc_kv(j.ExtendedProperties, 'UserAgent'))",
        "client_info": "rc_nz(j.ClientInfoString)",
        "session_id": "rc_nz(j.SessionId)",
        "object_id": "rc_nz(j.OfficeObjectId)",
        "result_status": "rc_nz(j.ResultStatus)",
        "mailbox_owner": "lower(rc_nz(j.MailboxOwnerUPN))",
        "app_id": "rc_nz(j.AppId)",
        "logon_type": "CASE rc_nz(j.Logon_Type) WHEN 'Owner' THEN 0 WHEN 'Admin' THEN 1 "
        "WHEN 'Delegated' THEN 2 ELSE try_cast(j.Logon_Type AS INTEGER) END",
        "error_number": "NULL",
        "parameters": "rc_kvs(j.Parameters)",
        "extended_properties": "rc_kvs(j.ExtendedProperties)",
        "modified_properties": "rc_mods(j.ModifiedProperties)",
        "item_subject": "rc_obj(j.Item)->>'$.Subject'",
        "item_folder": "coalesce(rc_obj(j.Item)->>'$.ParentFolder.Path', rc_obj(j.Folder)->>'$.Path')",
        "affected_count": "CAST(json_array_length(rc_obj(j.AffectedItems)) AS INTEGER)",
        "affected_subjects": "list_transform(json_transform(rc_obj(j.AffectedItems), "
        '\'[{"Subject":"VARCHAR"}]\'), lambda x: x.Subject)',
        "target_ids": "NULL",
        "user_key": "lower(rc_nz(j.UserKey))",
    },
    time_fields=("j.TimeGenerated", "j.Start_Time"),
)

# -- sign-ins ----------------------------------------------------------------------------
_LOCATION = {
    "city": V, "state": V, "countryOrRegion": V,
    "geoCoordinates": {"latitude": "DOUBLE", "longitude": "DOUBLE"},
}  # fmt: skip
_DEVICE = {"operatingSystem": V, "browser": V}
_STATUS = {"errorCode": "INTEGER", "failureReason": V, "additionalDetails": V}

GRAPH_SIGNIN = Mapping(
    "graph-signin",
    "signins",
    {
        "createdDateTime": V,
        "id": V,
        "userPrincipalName": V,
        "userId": V,
        "userDisplayName": V,
        "appDisplayName": V,
        "appId": V,
        "clientAppUsed": V,
        "isInteractive": V,
        "ipAddress": V,
        "location": _LOCATION,
        "status": _STATUS,
        "authenticationRequirement": V,
        "conditionalAccessStatus": V,
        "riskLevelDuringSignIn": V,
        "riskState": V,
        "userAgent": V,
        "deviceDetail": _DEVICE,
        "resourceDisplayName": V,
        "correlationId": V,
        "signInEventTypes": [V],
    },
    {
        "time": "{time}(j.createdDateTime)",
        "signin_id": "j.id",
        "signin_kind": "CASE WHEN list_contains(j.signInEventTypes, 'nonInteractiveUser') "
        "OR rc_bool(j.isInteractive) = false THEN 'non-interactive' ELSE 'interactive' END",
        "user_principal_name": "lower(j.userPrincipalName)",
        "user_id": "j.userId",
        "user_display_name": "j.userDisplayName",
        "app_display_name": "j.appDisplayName",
        "app_id": "j.appId",
        "client_app_used": "j.clientAppUsed",
        "is_interactive": "rc_bool(j.isInteractive)",
        "ip_address": "rc_ip(j.ipAddress)",
        "country": "rc_nz(j.location.countryOrRegion)",
        "state": "rc_nz(j.location.state)",
        "city": "rc_nz(j.location.city)",
        "latitude": "j.location.geoCoordinates.latitude",
        "longitude": "j.location.geoCoordinates.longitude",
        "error_code": "j.status.errorCode",
        "failure_reason": "rc_nz(j.status.failureReason)",
        "success": "j.status.errorCode = 0",
        "authentication_requirement": "j.authenticationRequirement",
        "conditional_access_status": "j.conditionalAccessStatus",
        "risk_level": "j.riskLevelDuringSignIn",
        "risk_state": "j.riskState",
        "user_agent": "j.userAgent",
        "device_os": "rc_nz(j.deviceDetail.operatingSystem)",
        "device_browser": "rc_nz(j.deviceDetail.browser)",
        "resource_display_name": "j.resourceDisplayName",
        "correlation_id": "j.correlationId",
        "additional_details": "rc_nz(j.status.additionalDetails)",
    },
)

_SENTINEL_SIGNIN_LETS = {
    "loc": f"json_transform(rc_obj(j.LocationDetails), '{json.dumps(_LOCATION)}')",
    "status": f"json_transform(rc_obj(j.Status), '{json.dumps(_STATUS)}')",
    "device": f"json_transform(rc_obj(j.DeviceDetail), '{json.dumps(_DEVICE)}')",
}
_SENTINEL_ERROR = "coalesce(try_cast(j.ResultType AS INTEGER), status.errorCode)"

SENTINEL_SIGNIN = Mapping(
    "sentinel-signin",
    "signins",
    {
        "TimeGenerated": V,
        "CreatedDateTime": V,
        "Id": V,
        "UserPrincipalName": V,
        "UserId": V,
        "UserDisplayName": V,
        "AppDisplayName": V,
        "AppId": V,
        "ClientAppUsed": V,
        "IsInteractive": V,
        "IPAddress": V,
        "LocationDetails": J,
        "Location": V,
        "ResultType": V,
        "ResultDescription": V,
        "Status": J,
        "AuthenticationRequirement": V,
        "ConditionalAccessStatus": V,
        "RiskLevelDuringSignIn": V,
        "RiskState": V,
        "UserAgent": V,
        "DeviceDetail": J,
        "ResourceDisplayName": V,
        "CorrelationId": V,
        "Type": V,
        "Category": V,
        "AuthenticationDetails": J,
    },
    {
        "time": "coalesce({time}(j.TimeGenerated), {time}(j.CreatedDateTime), "
        "{time}(rc_obj(j.AuthenticationDetails)->>'$[0].authenticationStepDateTime'))",
        "signin_id": "rc_nz(j.Id)",
        "signin_kind": "CASE WHEN j.Type = 'AADNonInteractiveUserSignInLogs' "
        "OR j.Category = 'NonInteractiveUserSignInLogs' OR rc_bool(j.IsInteractive) = false "
        "THEN 'non-interactive' ELSE 'interactive' END",
        "user_principal_name": "lower(rc_nz(j.UserPrincipalName))",
        "user_id": "rc_nz(j.UserId)",
        "user_display_name": "rc_nz(j.UserDisplayName)",
        "app_display_name": "rc_nz(j.AppDisplayName)",
        "app_id": "rc_nz(j.AppId)",
        "client_app_used": "rc_nz(j.ClientAppUsed)",
        "is_interactive": "rc_bool(j.IsInteractive)",
        "ip_address": "rc_ip(j.IPAddress)",
        "country": "coalesce(rc_nz(loc.countryOrRegion), rc_nz(j.Location))",
        "state": "rc_nz(loc.state)",
        "city": "rc_nz(loc.city)",
        "latitude": "loc.geoCoordinates.latitude",
        "longitude": "loc.geoCoordinates.longitude",
        "error_code": _SENTINEL_ERROR,
        "failure_reason": "coalesce(rc_nz(status.failureReason), rc_nz(j.ResultDescription))",
        "success": f"{_SENTINEL_ERROR} = 0",
        "authentication_requirement": "rc_nz(j.AuthenticationRequirement)",
        "conditional_access_status": "rc_nz(j.ConditionalAccessStatus)",
        "risk_level": "rc_nz(j.RiskLevelDuringSignIn)",
        "risk_state": "rc_nz(j.RiskState)",
        "user_agent": "rc_nz(j.UserAgent)",
        "device_os": "rc_nz(device.operatingSystem)",
        "device_browser": "rc_nz(device.browser)",
        "resource_display_name": "rc_nz(j.ResourceDisplayName)",
        "correlation_id": "rc_nz(j.CorrelationId)",
        "additional_details": "rc_nz(status.additionalDetails)",
    },
    time_fields=("j.TimeGenerated", "j.CreatedDateTime"),
    lets=_SENTINEL_SIGNIN_LETS,
)

# The Entra admin center's "Download CSV": "Location" is "City, State, CC".
_ENTRA_CSV_ERROR = 'try_cast(j."Sign-in error code" AS INTEGER)'
ENTRA_SIGNIN_CSV = Mapping(
    "entra-signin-csv",
    "signins",
    {
        "Date (UTC)": V,
        "Request ID": V,
        "Username": V,
        "User ID": V,
        "User": V,
        "Application": V,
        "Application ID": V,
        "Client app": V,
        "IP address": V,
        "Location": V,
        "Status": V,
        "Sign-in error code": V,
        "Failure reason": V,
        "Authentication requirement": V,
        "Conditional Access": V,
        "User agent": V,
        "Operating System": V,
        "Browser": V,
        "Resource": V,
        "Correlation ID": V,
    },
    {
        "time": '{time}(j."Date (UTC)")',
        "signin_id": 'rc_nz(j."Request ID")',
        "signin_kind": "NULL",
        "user_principal_name": "lower(rc_nz(j.Username))",
        "user_id": 'rc_nz(j."User ID")',
        "user_display_name": 'rc_nz(j."User")',
        "app_display_name": "rc_nz(j.Application)",
        "app_id": 'rc_nz(j."Application ID")',
        "client_app_used": 'rc_nz(j."Client app")',
        "is_interactive": "NULL",
        "ip_address": 'rc_ip(j."IP address")',
        "country": "rc_nz(trim(string_split(j.Location, ',')[-1]))",
        "state": "CASE WHEN len(string_split(j.Location, ',')) >= 3 "
        "THEN rc_nz(trim(string_split(j.Location, ',')[2])) END",
        "city": "CASE WHEN len(string_split(j.Location, ',')) >= 2 "
        "THEN rc_nz(trim(string_split(j.Location, ',')[1])) END",
        "latitude": "NULL",
        "longitude": "NULL",
        "error_code": _ENTRA_CSV_ERROR,
        "failure_reason": 'rc_nz(j."Failure reason")',
        "success": f"coalesce({_ENTRA_CSV_ERROR} = 0, lower(j.Status) = 'success')",
        "authentication_requirement": 'rc_nz(j."Authentication requirement")',
        "conditional_access_status": 'rc_nz(j."Conditional Access")',
        "risk_level": "NULL",
        "risk_state": "NULL",
        "user_agent": 'rc_nz(j."User agent")',
        "device_os": 'rc_nz(j."Operating System")',
        "device_browser": "rc_nz(j.Browser)",
        "resource_display_name": "rc_nz(j.Resource)",
        "correlation_id": 'rc_nz(j."Correlation ID")',
    },
    time_fields=('j."Date (UTC)"',),
)

# -- directory audits --------------------------------------------------------------------
_INITIATOR = {
    "user": {"id": V, "userPrincipalName": V, "ipAddress": V},
    "app": {"displayName": V, "appId": V, "servicePrincipalId": V},
}
GRAPH_DIRECTORY_AUDIT = Mapping(
    "graph-directory-audit",
    "directory_audits",
    {
        "activityDateTime": V,
        "id": V,
        "category": V,
        "activityDisplayName": V,
        "operationType": V,
        "result": V,
        "resultReason": V,
        "loggedByService": V,
        "correlationId": V,
        "initiatedBy": _INITIATOR,
        "targetResources": J,
    },
    {
        "time": "{time}(j.activityDateTime)",
        "audit_id": "j.id",
        "category": "j.category",
        "activity": "trim(j.activityDisplayName)",
        "operation_type": "j.operationType",
        "result": "j.result",
        "result_reason": "rc_nz(j.resultReason)",
        "logged_by_service": "j.loggedByService",
        "correlation_id": "j.correlationId",
        "initiated_by_upn": "lower(j.initiatedBy.user.userPrincipalName)",
        "initiated_by_id": "coalesce(j.initiatedBy.user.id, j.initiatedBy.app.servicePrincipalId)",
        "initiated_by_app": "j.initiatedBy.app.displayName",
        "initiated_by_ip": "rc_ip(j.initiatedBy.user.ipAddress)",
        "targets": "targets",
        "target_upn": "rc_first_upn(targets)",
    },
    lets={"targets": "rc_targets(j.targetResources)"},
)

_SENTINEL_INITIATOR = f"json_transform(rc_obj(j.InitiatedBy), '{json.dumps(_INITIATOR)}')"
SENTINEL_AUDIT = Mapping(
    "sentinel-audit",
    "directory_audits",
    {
        "TimeGenerated": V,
        "ActivityDateTime": V,
        "Id": V,
        "Category": V,
        "OperationName": V,
        "ActivityDisplayName": V,
        "AADOperationType": V,
        "Result": V,
        "ResultReason": V,
        "ResultDescription": V,
        "LoggedByService": V,
        "CorrelationId": V,
        "InitiatedBy": J,
        "TargetResources": J,
    },
    {
        "time": "coalesce({time}(j.TimeGenerated), {time}(j.ActivityDateTime))",
        "audit_id": "rc_nz(j.Id)",
        "category": "rc_nz(j.Category)",
        "activity": "trim(coalesce(rc_nz(j.ActivityDisplayName), rc_nz(j.OperationName)))",
        "operation_type": "rc_nz(j.AADOperationType)",
        "result": "rc_nz(j.Result)",
        "result_reason": "coalesce(rc_nz(j.ResultReason), rc_nz(j.ResultDescription))",
        "logged_by_service": "rc_nz(j.LoggedByService)",
        "correlation_id": "rc_nz(j.CorrelationId)",
        "initiated_by_upn": "lower(rc_nz(initiator.user.userPrincipalName))",
        "initiated_by_id": "coalesce(rc_nz(initiator.user.id), rc_nz(initiator.app.servicePrincipalId))",
        "initiated_by_app": "rc_nz(initiator.app.displayName)",
        "initiated_by_ip": "rc_ip(initiator.user.ipAddress)",
        "targets": "targets",
        "target_upn": "rc_first_upn(targets)",
    },
    time_fields=("j.TimeGenerated", "j.ActivityDateTime"),
    lets={
        "targets": "rc_targets(j.TargetResources)",
        "initiator": _SENTINEL_INITIATOR,
    },
)


def _entra_audit_targets() -> str:
    """Targets of the admin center's audit CSV, flattened as Target1..3 and Property1..5."""
    targets = []
    for t in range(1, 4):
        mods = ", ".join(
            f"{{'name': rc_nz(j.\"Target{t}ModifiedProperty{m}Name\"), "
            f"'old_value': rc_nz(j.\"Target{t}ModifiedProperty{m}OldValue\"), "
            f"'new_value': rc_nz(j.\"Target{t}ModifiedProperty{m}NewValue\")}}"
            for m in range(1, 6)
        )
        targets.append(
            f'CASE WHEN rc_nz(j."Target{t}ObjectId") IS NOT NULL '
            f'OR rc_nz(j."Target{t}DisplayName") IS NOT NULL THEN '
            f"{{'id': rc_nz(j.\"Target{t}ObjectId\"), "
            f"'display_name': rc_nz(j.\"Target{t}DisplayName\"), "
            f"'type': rc_nz(j.\"Target{t}Type\"), "
            f"'upn': lower(rc_nz(j.\"Target{t}UserPrincipalName\")), "
            f"'modified': list_filter([{mods}], lambda m: m.name IS NOT NULL)}} END"
        )
    return f"list_filter([{', '.join(targets)}], lambda t: t IS NOT NULL)"


_ENTRA_AUDIT_SCHEMA: dict[str, Any] = {
    k: V
    for k in [
        "Date (UTC)", "CorrelationId", "Service", "Category", "Activity", "Result",
        "ResultReason", "ActorType", "ActorDisplayName", "ActorObjectId",
        "ActorUserPrincipalName", "IPAddress", "ActorServicePrincipalId",
        "ActorServicePrincipalName",
    ]
}  # fmt: skip
for _t in range(1, 4):
    for _f in ("Type", "DisplayName", "ObjectId", "UserPrincipalName"):
        _ENTRA_AUDIT_SCHEMA[f"Target{_t}{_f}"] = V
    for _m in range(1, 6):
        for _f in ("Name", "OldValue", "NewValue"):
            _ENTRA_AUDIT_SCHEMA[f"Target{_t}ModifiedProperty{_m}{_f}"] = V

ENTRA_AUDIT_CSV = Mapping(
    "entra-audit-csv",
    "directory_audits",
    _ENTRA_AUDIT_SCHEMA,
    {
        "time": '{time}(j."Date (UTC)")',
        "audit_id": "NULL",
        "category": "rc_nz(j.Category)",
        "activity": "trim(j.Activity)",
        "operation_type": "NULL",
        "result": "rc_nz(j.Result)",
        "result_reason": "rc_nz(j.ResultReason)",
        "logged_by_service": "rc_nz(j.Service)",
        "correlation_id": "rc_nz(j.CorrelationId)",
        "initiated_by_upn": "lower(rc_nz(j.ActorUserPrincipalName))",
        "initiated_by_id": "coalesce(rc_nz(j.ActorObjectId), rc_nz(j.ActorServicePrincipalId))",
        "initiated_by_app": "rc_nz(j.ActorServicePrincipalName)",
        "initiated_by_ip": "rc_ip(j.IPAddress)",
        "targets": "targets",
        "target_upn": "rc_first_upn(targets)",
    },
    time_fields=('j."Date (UTC)"',),
    lets={"targets": _entra_audit_targets()},
)

# -- Entra diagnostic settings: {"category": ..., "properties": {Graph shape}} -------------
_SIGNIN_CATEGORIES = (
    "'SignInLogs', 'NonInteractiveUserSignInLogs', 'ServicePrincipalSignInLogs', 'ManagedIdentitySignInLogs'"
)
_DIAG_SIGNIN_COLUMNS = dict(GRAPH_SIGNIN.columns)
_DIAG_SIGNIN_COLUMNS["signin_kind"] = (
    "CASE WHEN json_extract_string(rec, '$.category') = 'NonInteractiveUserSignInLogs' "
    "OR rc_bool(j.isInteractive) = false THEN 'non-interactive' ELSE 'interactive' END"
)
DIAG_SIGNIN = Mapping(
    "diag-signin",
    "signins",
    GRAPH_SIGNIN.schema,
    _DIAG_SIGNIN_COLUMNS,
    source="json_extract(rec, '$.properties')",
    where=f"json_extract_string(rec, '$.category') IN ({_SIGNIN_CATEGORIES})",
)
DIAG_AUDIT = Mapping(
    "diag-audit",
    "directory_audits",
    GRAPH_DIRECTORY_AUDIT.schema,
    GRAPH_DIRECTORY_AUDIT.columns,
    source="json_extract(rec, '$.properties')",
    where="json_extract_string(rec, '$.category') = 'AuditLogs'",
    lets=GRAPH_DIRECTORY_AUDIT.lets,
)


# -- Exchange Online mailbox state (Get-* | ConvertTo-Json or Export-Csv) -------------------
def _state_mapping(name: str, table: str, columns: dict[str, tuple[str, str]]) -> Mapping:
    """A mapping from PowerShell object properties; kinds: text, lower, bool, int, list, time."""
    wrap = {
        "text": "rc_nz(j.\"{key}\"->>'$')",
        "lower": "lower(rc_nz(j.\"{key}\"->>'$'))",
        "bool": "rc_bool(j.\"{key}\"->>'$')",
        "int": "try_cast(j.\"{key}\"->>'$' AS INTEGER)",
        "list": 'rc_list(j."{key}")',
        "time": "{{time}}(j.\"{key}\"->>'$')",
    }
    schema = {key: J for key, _ in columns.values()}
    exprs = {col: wrap[kind].format(key=key) for col, (key, kind) in columns.items()}
    times = tuple(f"j.\"{key}\"->>'$'" for key, kind in columns.values() if kind == "time")
    return Mapping(name, table, schema, exprs, time_fields=times)


INBOX_RULE = _state_mapping(
    "exo-inbox-rule",
    "inbox_rules",
    {
        "mailbox": ("MailboxOwnerId", "lower"),
        "identity": ("Identity", "text"),
        "rule_identity": ("RuleIdentity", "text"),
        "name": ("Name", "text"),
        "enabled": ("Enabled", "bool"),
        "priority": ("Priority", "int"),
        "description": ("Description", "text"),
        "from_addresses": ("From", "list"),
        "subject_contains_words": ("SubjectContainsWords", "list"),
        "body_contains_words": ("BodyContainsWords", "list"),
        "subject_or_body_contains_words": ("SubjectOrBodyContainsWords", "list"),
        "from_address_contains_words": ("FromAddressContainsWords", "list"),
        "move_to_folder": ("MoveToFolder", "text"),
        "copy_to_folder": ("CopyToFolder", "text"),
        "delete_message": ("DeleteMessage", "bool"),
        "soft_delete_message": ("SoftDeleteMessage", "bool"),
        "mark_as_read": ("MarkAsRead", "bool"),
        "stop_processing_rules": ("StopProcessingRules", "bool"),
        "forward_to": ("ForwardTo", "list"),
        "forward_as_attachment_to": ("ForwardAsAttachmentTo", "list"),
        "redirect_to": ("RedirectTo", "list"),
        "supported_by_task": ("SupportedByTask", "bool"),
    },
)
# The names Exchange gives a recipient beside its address, which other records use for it.
_NAMES = {
    "alias": ("Alias", "lower"),
    "guid": ("ExchangeGuid", "lower"),
    "external_directory_object_id": ("ExternalDirectoryObjectId", "lower"),
    "email_addresses": ("EmailAddresses", "list"),
    "legacy_exchange_dn": ("LegacyExchangeDN", "lower"),
}
MAILBOX = _state_mapping(
    "exo-mailbox",
    "mailboxes",
    {
        "identity": ("Identity", "text"),
        "user_principal_name": ("UserPrincipalName", "lower"),
        "primary_smtp_address": ("PrimarySmtpAddress", "lower"),
        "display_name": ("DisplayName", "text"),
        "recipient_type_details": ("RecipientTypeDetails", "text"),
        "forwarding_smtp_address": ("ForwardingSmtpAddress", "text"),
        "forwarding_address": ("ForwardingAddress", "text"),
        "deliver_to_mailbox_and_forward": ("DeliverToMailboxAndForward", "bool"),
        "grant_send_on_behalf_to": ("GrantSendOnBehalfTo", "list"),
        "hidden_from_address_lists": ("HiddenFromAddressListsEnabled", "bool"),
        "when_changed": ("WhenChanged", "time"),
        **_NAMES,
    },
)
RECIPIENT = _state_mapping(
    "exo-recipient",
    "recipients",
    {
        "identity": ("Identity", "text"),
        "display_name": ("DisplayName", "text"),
        "primary_smtp_address": ("PrimarySmtpAddress", "lower"),
        "recipient_type_details": ("RecipientTypeDetails", "text"),
        **_NAMES,
    },
)
CAS_MAILBOX = _state_mapping(
    "exo-cas-mailbox",
    "cas_mailboxes",
    {
        "identity": ("Identity", "text"),
        "primary_smtp_address": ("PrimarySmtpAddress", "lower"),
        "pop_enabled": ("PopEnabled", "bool"),
        "imap_enabled": ("ImapEnabled", "bool"),
        "mapi_enabled": ("MAPIEnabled", "bool"),
        "ews_enabled": ("EwsEnabled", "bool"),
        "activesync_enabled": ("ActiveSyncEnabled", "bool"),
        "owa_enabled": ("OWAEnabled", "bool"),
        "smtp_client_auth_disabled": ("SmtpClientAuthenticationDisabled", "bool"),
    },
)
MAILBOX_PERMISSION = _state_mapping(
    "exo-mailbox-permission",
    "mailbox_permissions",
    {
        "identity": ("Identity", "text"),
        "user": ("User", "lower"),
        "access_rights": ("AccessRights", "list"),
        "is_inherited": ("IsInherited", "bool"),
        "deny": ("Deny", "bool"),
    },
)
# Get-MailboxMessageConfiguration: the signature an attacker may plant (S10).
MAILBOX_CONFIG = _state_mapping(
    "exo-message-configuration",
    "mailbox_config",
    {
        "identity": ("Identity", "text"),
        "mailbox": ("MailboxOwnerId", "lower"),
        "signature_html": ("SignatureHtml", "text"),
        "signature_text": ("SignatureText", "text"),
    },
)
# Get-BlockedSenderAddress: mailboxes restricted from sending (S5).
BLOCKED_SENDER = _state_mapping(
    "exo-blocked-sender",
    "blocked_senders",
    {
        "time": ("CreatedDatetime", "time"),
        "sender_address": ("SenderAddress", "lower"),
        "reason": ("Reason", "text"),
    },
)
# Get-MessageTrace / Get-MessageTraceV2: one row per recipient (S2, S6).
MESSAGE_TRACE = _state_mapping(
    "exo-message-trace",
    "message_trace",
    {
        "time": ("Received", "time"),
        "message_id": ("MessageId", "text"),
        "sender": ("SenderAddress", "lower"),
        "recipient": ("RecipientAddress", "lower"),
        "subject": ("Subject", "text"),
        "status": ("Status", "text"),
        "from_ip": ("FromIP", "text"),
    },
)

# -- Graph message (Sent Items, Deleted Items) ---------------------------------------------
# A Graph message does not say whose mailbox or which folder it is in: Reclaim's collector adds
# both as instance annotations ("@reclaim.mailbox", "@reclaim.folder"); other exports leave them NULL.
MAILBOX_ANNOTATION = "@reclaim.mailbox"
FOLDER_ANNOTATION = "@reclaim.folder"
USER_ANNOTATION = "@reclaim.upn"  # whose directory state a Graph record describes
SERVICE_ANNOTATION = "@reclaim.service"  # which service's role group: "exchange" or "compliance"
_ADDRESSES = [{"emailAddress": {"address": V}}]
GRAPH_MESSAGE = Mapping(
    "graph-message",
    "messages",
    {
        "sentDateTime": V, "receivedDateTime": V, "id": V, "internetMessageId": V,
        "parentFolderId": V, "from": {"emailAddress": {"address": V}},
        "toRecipients": _ADDRESSES, "ccRecipients": _ADDRESSES, "bccRecipients": _ADDRESSES,
        "subject": V, "bodyPreview": V, "isDraft": V, MAILBOX_ANNOTATION: V, FOLDER_ANNOTATION: V,
    },
    {
        "time": "coalesce({time}(j.sentDateTime), {time}(j.receivedDateTime))",
        "message_id": "j.id",
        "internet_message_id": "j.internetMessageId",
        "folder_id": "j.parentFolderId",
        "sender": "lower(j.from.emailAddress.address)",
        "recipients": "list_transform(list_concat(j.toRecipients, j.ccRecipients, j.bccRecipients), "
        "lambda r: lower(r.emailAddress.address))",
        "subject": "j.subject",
        "body_preview": "j.bodyPreview",
        "is_draft": "rc_bool(j.isDraft)",
        "mailbox": f'lower(rc_nz(j."{MAILBOX_ANNOTATION}"))',
        "folder": f'lower(rc_nz(j."{FOLDER_ANNOTATION}"))',
    },
    time_fields=("j.sentDateTime", "j.receivedDateTime"),
)

# -- Entra directory state of a user (Graph) -------------------------------------------------
_UPN = f'lower(rc_nz(j."{USER_ANNOTATION}"))'

# users/{id}/authentication/methods: one derived type per method, told apart by @odata.type.
_METHOD_TYPE = (
    "regexp_extract(j.\"@odata.type\", '^#?microsoft\\.graph\\.(\\w+)AuthenticationMethod$', 1)"
)
GRAPH_AUTH_METHOD = Mapping(
    "graph-auth-method",
    "auth_methods",
    {
        "@odata.type": V, "id": V, "createdDateTime": V, "phoneNumber": V, "phoneType": V,
        "displayName": V, "emailAddress": V, "model": V, "deviceTag": V, "phoneAppVersion": V,
        "keyStrength": V, "platform": V, USER_ANNOTATION: V,
    },
    {
        "upn": _UPN,
        "method_id": "j.id",
        "method_type": f"nullif({_METHOD_TYPE}, '')",
        "display": "coalesce(rc_nz(j.phoneNumber), rc_nz(j.displayName), rc_nz(j.emailAddress), "
        "rc_nz(j.model))",
        "detail": "coalesce(rc_nz(j.phoneType), rc_nz(j.model), rc_nz(j.phoneAppVersion), "
        "rc_nz(j.keyStrength), rc_nz(j.platform))",
        "created": "{time}(j.createdDateTime)",
    },
    time_fields=("j.createdDateTime",),
)

# roleManagement/directory: roleAssignments (active), roleEligibilitySchedules and their instances
# (eligible), roleAssignmentSchedules and instances (active through PIM), optionally with
# $expand=roleDefinition. Eligibility is told from the content: a schedule without assignmentType,
# or an instance of an eligibility schedule.
_SCHEDULE = {"startDateTime": V, "expiration": {"endDateTime": V}}
GRAPH_ROLE_ASSIGNMENT = Mapping(
    "graph-role-assignment",
    "role_assignments",
    {
        "id": V, "principalId": V, "roleDefinitionId": V, "directoryScopeId": V, "appScopeId": V,
        "memberType": V, "assignmentType": V, "roleEligibilityScheduleId": V, "scheduleInfo": _SCHEDULE,
        "startDateTime": V, "endDateTime": V, "roleDefinition": {"displayName": V},
        "principal": {"userPrincipalName": V}, USER_ANNOTATION: V,
    },
    {
        "upn": f"coalesce({_UPN}, lower(rc_nz(j.principal.userPrincipalName)))",
        "principal_id": "j.principalId",
        "assignment_id": "j.id",
        "role_id": "j.roleDefinitionId",
        "role_name": "rc_nz(j.roleDefinition.displayName)",
        "kind": "CASE WHEN j.roleEligibilityScheduleId IS NOT NULL "
        "OR (j.scheduleInfo IS NOT NULL AND j.assignmentType IS NULL) THEN 'eligible' ELSE 'active' END",
        "scope": "coalesce(rc_nz(j.directoryScopeId), rc_nz(j.appScopeId))",
        "member_type": "rc_nz(j.memberType)",
        "start_time": "coalesce({time}(j.scheduleInfo.startDateTime), {time}(j.startDateTime))",
        "end_time": "coalesce({time}(j.scheduleInfo.expiration.endDateTime), {time}(j.endDateTime))",
    },
    time_fields=("j.scheduleInfo.startDateTime", "j.startDateTime"),
)

# oauth2PermissionGrants (delegated consents) and users/{id}/appRoleAssignments.
_GRANT = {"id": V, "clientId": V, "consentType": V, "principalId": V, "resourceId": V, "scope": V}
GRAPH_OAUTH_GRANT = Mapping(
    "graph-oauth2-grant",
    "consents",
    {**_GRANT, USER_ANNOTATION: V},
    {
        "upn": _UPN,
        "principal_id": "rc_nz(j.principalId)",
        "principal_type": "CASE WHEN rc_nz(j.principalId) IS NOT NULL THEN 'User' END",
        "kind": "'delegated'",
        "grant_id": "j.id",
        "client_id": "j.clientId",
        "resource_id": "j.resourceId",
        "resource_name": "NULL",
        "scopes": "list_filter(string_split(coalesce(j.scope, ''), ' '), lambda s: s <> '')",
        "app_role_id": "NULL",
        "consent_type": "j.consentType",
        "created": "NULL",
    },
)
GRAPH_APP_ROLE_ASSIGNMENT = Mapping(
    "graph-app-role-assignment",
    "consents",
    {
        "id": V, "appRoleId": V, "createdDateTime": V, "creationTimestamp": V, "principalId": V,
        "principalType": V,
        "principalDisplayName": V, "resourceId": V, "resourceDisplayName": V, USER_ANNOTATION: V,
    },
    {
        "upn": _UPN,
        "principal_id": "j.principalId",
        "principal_type": "j.principalType",
        "kind": "'application-role'",
        "grant_id": "j.id",
        "client_id": "NULL",
        "resource_id": "j.resourceId",
        "resource_name": "rc_nz(j.resourceDisplayName)",
        "scopes": "NULL",
        "app_role_id": "j.appRoleId",
        "consent_type": "NULL",
        "created": "coalesce({time}(j.createdDateTime), {time}(j.creationTimestamp))",  # v1.0, beta
    },
    time_fields=("j.createdDateTime", "j.creationTimestamp"),
)


# -- Exchange Online and Security & Compliance role groups (Get-RoleGroup) ---------------------------
# Reclaim's collectors write the groups the user is in, with "@reclaim.upn" and "@reclaim.service": one row
# each. A plain export (ConvertTo-Json, or Export-Csv with Members joined by ';') gives one row per member
# name: an address is taken as the UPN; the service is told by Security & Compliance's FFO directory in
# the group's Identity or DistinguishedName.
def _ps(key: str) -> str:
    return f"rc_nz(j.\"{key}\"->>'$')"


_GROUP_UPN = f"lower({_ps(USER_ANNOTATION)})"
_MEMBER_NAMES = (  # Export-Csv of an unjoined list writes its type's name, no member
    "list_filter(rc_list(j.Members), lambda m: rc_nz(m) IS NOT NULL "
    "AND NOT regexp_matches(m, '^(System|Microsoft)\\.[\\w.`]+(\\[.*\\])?$'))"
)
ROLE_GROUP = Mapping(
    "exo-role-group",
    "role_assignments",
    dict.fromkeys(("Name", "Identity", "DistinguishedName", "Guid", "ExchangeObjectId", "Members"), J)
    | {USER_ANNOTATION: J, SERVICE_ANNOTATION: J},
    {
        "upn": "coalesce(annotated_upn, CASE WHEN regexp_matches(member, '^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$') "
        "THEN lower(member) END)",
        "principal_id": "coalesce(member, annotated_upn)",
        "assignment_id": "service || ':' || lower(group_id) || ':' || lower(coalesce(annotated_upn, member))",
        "role_id": "group_id",
        "role_name": _ps("Name"),
        "kind": "service || '-role-group'",
        "scope": "'/'",
        "member_type": "'Direct'",  # a role group lists its direct members
        "start_time": "NULL",
        "end_time": "NULL",
    },
    lets={
        "annotated_upn": _GROUP_UPN,
        "member": f"unnest(CASE WHEN {_GROUP_UPN} IS NOT NULL THEN [NULL::VARCHAR] "
        f"ELSE coalesce({_MEMBER_NAMES}, []) END)",
        "service": f"CASE WHEN lower({_ps(SERVICE_ANNOTATION)}) IN ('exchange', 'compliance') "
        f"THEN lower({_ps(SERVICE_ANNOTATION)}) WHEN regexp_matches("
        f"coalesce({_ps('Identity')}, '') || ' ' || coalesce({_ps('DistinguishedName')}, ''), "
        "'ffo\\.extest\\.microsoft\\.com|dc=ffo,dc=extest', 'i') THEN 'compliance' ELSE 'exchange' END",
        "group_id": f"coalesce({_ps('Guid')}, {_ps('ExchangeObjectId')})",
    },
    expands=True,
)
