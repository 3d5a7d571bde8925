"""Sigma rules on the Unified Audit Log, and native rules written out as Sigma.

pySigma has no DuckDB backend, so this module is one: ``DuckDBBackend`` turns a Sigma
detection into a DuckDB ``WHERE`` clause over the case's ``audit`` table, and ``pipeline()``
is the processing pipeline in front of it: it accepts only Microsoft 365 log sources, maps
the field names of the m365 rules (the Unified Audit Log's own, and the ``eventName`` /
``eventSource`` / ``status`` aliases of the threat_management rules) to audit columns, and
refuses every other field by name. Sigma semantics are kept: strings match without regard to
case, ``*`` and ``?`` are wildcards, regular expressions are searched (RE2), and a missing value
never matches (``not filter`` holds for a record without the field).

``load`` turns each Sigma file into a ``Rule`` the engine runs like a native one; a file that
cannot be read, parsed or converted is a ``Skipped`` with the file and the reason, never an
error. ``export`` writes the native rules that carry a ``sigma:`` section as Sigma files.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import yaml
from sigma.collection import SigmaCollection
from sigma.conditions import ConditionFieldEqualsValueExpression, ConditionValueExpression
from sigma.conversion.base import TextQueryBackend
from sigma.conversion.deferred import DeferredQueryExpression
from sigma.conversion.state import ConversionState
from sigma.correlations import SigmaCorrelationRule
from sigma.exceptions import SigmaError, SigmaFeatureNotSupportedByBackendError, SigmaTransformationError
from sigma.processing.conditions import ExcludeFieldCondition, IncludeFieldCondition, RuleProcessingCondition
from sigma.processing.pipeline import ProcessingItem, ProcessingPipeline
from sigma.processing.transformations import (
    FieldMappingTransformation,
    MapStringTransformation,
    RuleFailureTransformation,
)
from sigma.processing.transformations.base import DetectionItemTransformation
from sigma.rule import SigmaDetectionItem, SigmaLevel, SigmaRule
from sigma.types import (
    CompareOperators,
    Placeholder,
    SigmaBool,
    SigmaCasedString,
    SigmaCIDRExpression,
    SigmaExists,
    SigmaExpansion,
    SigmaFieldReference,
    SigmaRegularExpression,
    SigmaString,
    SpecialChars,
)

from reclaim.detect import context
from reclaim.detect.check import check_queries
from reclaim.detect.engine import Skipped
from reclaim.detect.rules import SIGMA_SERVICES as SERVICES
from reclaim.detect.rules import Rule, rule_files
from reclaim.sqltext import sql_text

# -- the audit table as Sigma sees it ---------------------------------------------------------
# Column tokens the pipeline maps to, as VARCHAR SQL. The key-value lists are the JSON text the
# record had (original key names), so `Parameters|contains: 'ForwardTo'` reads as it does in a SIEM.
COLUMNS: dict[str, str] = {
    "time": "strftime(time, '%Y-%m-%dT%H:%M:%S')",  # as CreationTime is written
    **{c: c for c in (
        "record_id", "record_type", "workload", "operation", "user_id", "client_ip", "user_agent",
        "client_info", "session_id", "object_id", "result_status", "mailbox_owner", "app_id",
        "error_number", "item_subject", "item_folder",
    )},
    "logon_type": "CAST(logon_type AS VARCHAR)",
    "parameters": "to_json(list_transform(parameters, lambda e: {'Name': e.name, 'Value': e.value}))",
    "extended_properties": "to_json(list_transform(extended_properties, lambda e: "
    "{'Name': e.name, 'Value': e.value}))",
    "modified_properties": "to_json(list_transform(modified_properties, lambda e: "
    "{'Name': e.name, 'NewValue': e.new_value, 'OldValue': e.old_value}))",
}  # fmt: skip
# Tokens for a part of every element of a list column (None: the element itself): a condition on
# one holds when any element satisfies it, as SIEMs flatten `Parameters.Name`.
ELEMENTS: dict[str, tuple[str, str | None]] = {
    "parameters.name": ("parameters", "name"),
    "parameters.value": ("parameters", "value"),
    "extended_properties.name": ("extended_properties", "name"),
    "extended_properties.value": ("extended_properties", "value"),
    "modified_properties.name": ("modified_properties", "name"),
    "modified_properties.old_value": ("modified_properties", "old_value"),
    "modified_properties.new_value": ("modified_properties", "new_value"),
    "affected_subjects": ("affected_subjects", None),
    "target_ids": ("target_ids", None),
}
# Sigma field (as the m365 rules and the UAL spell it; OfficeActivity's names too) -> column token.
FIELDS: dict[str, str] = {
    "CreationTime": "time",
    "Id": "record_id",
    "RecordType": "record_type",
    "Workload": "workload", "eventSource": "workload", "OfficeWorkload": "workload",
    "Operation": "operation", "eventName": "operation",
    "UserId": "user_id",
    "ClientIP": "client_ip", "ClientIPAddress": "client_ip", "ActorIpAddress": "client_ip",
    "Client_IPAddress": "client_ip",
    "UserAgent": "user_agent",
    "ClientInfoString": "client_info",
    "SessionId": "session_id",
    "ObjectId": "object_id", "OfficeObjectId": "object_id",
    "ResultStatus": "result_status", "status": "result_status",
    "MailboxOwnerUPN": "mailbox_owner",
    "AppId": "app_id", "ClientAppId": "app_id", "ApplicationId": "app_id",
    "LogonType": "logon_type",
    "ErrorNumber": "error_number", "LogonError": "error_number",
    "Parameters": "parameters", "Parameters.Name": "parameters.name", "Parameters.Value": "parameters.value",
    # the table keeps OperationProperties among the ExtendedProperties
    "ExtendedProperties": "extended_properties", "ExtendedProperties.Name": "extended_properties.name",
    "ExtendedProperties.Value": "extended_properties.value",
    "OperationProperties.Name": "extended_properties.name",
    "OperationProperties.Value": "extended_properties.value",
    "ModifiedProperties": "modified_properties", "ModifiedProperties.Name": "modified_properties.name",
    "ModifiedProperties.NewValue": "modified_properties.new_value",
    "ModifiedProperties.OldValue": "modified_properties.old_value",
    "Item.Subject": "item_subject", "Subject": "item_subject",
    "Item.ParentFolder.Path": "item_folder", "Folder.Path": "item_folder",
    "AffectedItems.Subject": "affected_subjects",
    "Target.ID": "target_ids",
}  # fmt: skip
# `|expand` placeholders Reclaim fills from its own lists, at query time: (table, column).
LISTS: dict[str, tuple[str, str]] = {
    "internal_domains": ("rc_internal_domains", "domain"),
    "microsoft_mail_clients": ("rc_mail_clients", "app_id"),
}
# The threat_management rules' `status: success` is a normalized outcome; the UAL writes it
# per workload (Exchange cmdlets True/False, Entra Success/Failure, others Succeeded/Failed).
_STATUS: dict[str, str | list[str]] = {
    word: values
    for outcome, values in (
        ("success", ["Success", "Succeeded", "True"]),
        ("failure", ["Failure", "Failed", "False"]),
    )
    for word in (outcome, outcome.capitalize())
}
_LEVELS = {"informational": "low", "low": "low", "medium": "medium", "high": "high", "critical": "critical"}


def _like_escaped(text: str) -> str:
    return "".join("\\" + c if c in "\\%_" else c for c in text)


# -- pipeline ------------------------------------------------------------------------------
@dataclass
class UnmappedFieldFailure(DetectionItemTransformation):
    """Refuse a detection item whose field (or field reference) has no audit column, naming it."""

    def apply_detection_item(self, detection_item: SigmaDetectionItem) -> None:
        if detection_item.field is None:
            raise SigmaTransformationError(
                "a value without a field (keyword search) cannot be matched: "
                "the audit table keeps the record's fields, not its whole text",
                source=detection_item.source,
            )
        names = [detection_item.field] + [
            v.field for v in detection_item.value if isinstance(v, SigmaFieldReference)
        ]
        unknown = [n for n in names if n not in FIELDS]
        raise SigmaTransformationError(
            f"field '{unknown[0] if unknown else names[0]}' has no column in the audit table "
            "(docs/rules.md lists the fields Reclaim maps)",
            source=detection_item.source,
        )


@dataclass
class UnifiedAuditLogSource(RuleProcessingCondition):
    """Product m365 with one of the UAL's services (or none), and no category."""

    def match(self, rule: SigmaRule | SigmaCorrelationRule) -> bool:
        if not isinstance(rule, SigmaRule):
            return False
        source = rule.logsource
        return source.product == "m365" and source.service in (None, *SERVICES) and source.category is None


NOT_THE_UAL = (
    f"the log source is not the Microsoft 365 Unified Audit Log (product m365, service {', '.join(SERVICES)})"
)


def pipeline() -> ProcessingPipeline:
    """Microsoft 365 log sources only; Sigma field names to audit columns; any other field refused."""
    columns: dict[str | None, str | list[str]] = {k: v for k, v in FIELDS.items()}  # pySigma's type
    return ProcessingPipeline(
        name="Reclaim: Microsoft 365 Unified Audit Log",
        priority=20,
        items=[
            ProcessingItem(
                identifier="reclaim_m365_logsource",
                transformation=RuleFailureTransformation(NOT_THE_UAL),
                rule_conditions=[UnifiedAuditLogSource()],
                rule_condition_linking=all,
                rule_condition_negation=True,
            ),
            ProcessingItem(
                identifier="reclaim_unmapped_field",
                transformation=UnmappedFieldFailure(),
                field_name_conditions=[ExcludeFieldCondition(fields=list(FIELDS))],
            ),
            ProcessingItem(
                identifier="reclaim_status_values",
                transformation=MapStringTransformation(_STATUS),
                field_name_conditions=[IncludeFieldCondition(fields=["status"])],
            ),
            ProcessingItem(
                identifier="reclaim_audit_columns",
                transformation=FieldMappingTransformation(columns),
            ),
        ],
    )


# -- backend -------------------------------------------------------------------------------
class DuckDBBackend(TextQueryBackend):
    """Sigma detections as a DuckDB WHERE clause over Reclaim's ``audit`` table.

    Every comparison goes through ``escape_and_quote_field``, which knows only the column
    tokens above: nothing from a rule reaches the SQL except as an escaped literal.
    """

    name: ClassVar[str] = "Reclaim DuckDB (audit table)"
    formats: ClassVar[dict[str, str]] = {"default": "DuckDB WHERE clause over Reclaim's audit table"}
    requires_pipeline: ClassVar[bool] = False
    backend_processing_pipeline: ClassVar[ProcessingPipeline] = pipeline()

    group_expression: ClassVar[str | None] = "({expr})"
    or_token: ClassVar[str] = "OR"  # noqa: S105 (SQL, not a secret)
    and_token: ClassVar[str] = "AND"  # noqa: S105
    not_token: ClassVar[str] = "NOT"  # noqa: S105
    eq_token: ClassVar[str] = " = "  # noqa: S105

    str_quote: ClassVar[str] = "'"
    escape_char: ClassVar[str | None] = "\\"
    wildcard_multi: ClassVar[str | None] = "%"
    wildcard_single: ClassVar[str | None] = "_"
    add_escaped: ClassVar[str] = "\\"
    # Sigma compares strings without regard to case; LIKE patterns also carry the wildcards
    eq_expression: ClassVar[str] = "{field} ILIKE {value} ESCAPE '\\'"
    wildcard_match_expression: ClassVar[str | None] = "{field} ILIKE {value} ESCAPE '\\'"
    case_sensitive_match_expression: ClassVar[str | None] = "{field} LIKE {value} ESCAPE '\\'"

    re_expression: ClassVar[str | None] = "regexp_matches({field}, {regex})"
    re_escape: ClassVar[list[str]] = []
    re_escape_escape_char: bool = False

    compare_op_expression: ClassVar[str | None] = "TRY_CAST({field} AS DOUBLE) {operator} {value}"
    compare_operators: ClassVar[dict[CompareOperators, str] | None] = {
        CompareOperators.LT: "<", CompareOperators.LTE: "<=", CompareOperators.GT: ">",
        CompareOperators.GTE: ">=", CompareOperators.NEQ: "<>",
    }  # fmt: skip
    field_equals_field_expression: ClassVar[str | None] = "lower({field1}) = lower({field2})"
    field_equals_field_startswith_expression: ClassVar[str | None] = (
        "starts_with(lower({field1}), lower({field2}))"
    )
    field_equals_field_endswith_expression: ClassVar[str | None] = (
        "ends_with(lower({field1}), lower({field2}))"
    )
    field_equals_field_contains_expression: ClassVar[str | None] = (
        "contains(lower({field1}), lower({field2}))"
    )
    field_null_expression: ClassVar[str | None] = "{field} IS NULL"
    field_exists_expression: ClassVar[str | None] = "{field} IS NOT NULL"
    field_not_exists_expression: ClassVar[str | None] = "{field} IS NULL"

    def escape_and_quote_field(self, field_name: str) -> str:
        if field_name in COLUMNS:
            return COLUMNS[field_name]
        if field_name in ELEMENTS:
            part = ELEMENTS[field_name][1]
            return f"rc_x.{part}" if part else "rc_x"
        raise SigmaFeatureNotSupportedByBackendError(f"'{field_name}' is no column of the audit table")

    def convert_value_str(self, s: SigmaString, state: ConversionState) -> str:
        # SQL doubles a quote; the base class would escape it with the LIKE escape character
        return sql_text(
            s.convert(self.escape_char, self.wildcard_multi, self.wildcard_single, self.add_escaped)
        )

    def convert_value_re(self, r: SigmaRegularExpression, state: ConversionState) -> str:
        return sql_text(str(super().convert_value_re(r, state)))

    def convert_condition_field_eq_val(
        self, cond: ConditionFieldEqualsValueExpression, state: ConversionState
    ) -> str | DeferredQueryExpression:
        """Each comparison NULL-safe (a missing value does not match, and `not` of it does), and
        comparisons on a list element hold when any element matches."""
        value = cond.value
        if isinstance(value, SigmaExpansion | SigmaCIDRExpression):  # an OR of comparisons, each comes here
            return super().convert_condition_field_eq_val(cond, state)
        element = ELEMENTS.get(cond.field)
        if element and isinstance(value, SigmaFieldReference):
            raise SigmaFeatureNotSupportedByBackendError(
                f"a field reference on the list field '{cond.field}'"
            )
        if element and isinstance(value, SigmaExists):
            part = f"rc_x.{element[1]}" if element[1] else "rc_x"
            found = f"len(list_filter({element[0]}, lambda rc_x: {part} IS NOT NULL)) > 0"
            return f"coalesce({found}, false)" if value.exists else f"NOT coalesce({found}, false)"
        expr = super().convert_condition_field_eq_val(cond, state)
        if isinstance(expr, DeferredQueryExpression):  # never made by this backend
            raise SigmaFeatureNotSupportedByBackendError("deferred expressions")
        if element:
            expr = f"len(list_filter({element[0]}, lambda rc_x: {expr})) > 0"
        return f"coalesce({expr}, false)"

    def convert_condition_field_eq_val_str(
        self, cond: ConditionFieldEqualsValueExpression, state: ConversionState
    ) -> str | DeferredQueryExpression:
        if isinstance(cond.value, SigmaString) and cond.value.contains_placeholder():
            return self._placeholder_match(cond, "ILIKE")
        return super().convert_condition_field_eq_val_str(cond, state)

    def convert_condition_field_eq_val_str_case_sensitive(
        self, cond: ConditionFieldEqualsValueExpression, state: ConversionState
    ) -> str | DeferredQueryExpression:
        if isinstance(cond.value, SigmaCasedString) and cond.value.contains_placeholder():
            return self._placeholder_match(cond, "LIKE")
        return super().convert_condition_field_eq_val_str_case_sensitive(cond, state)

    def _placeholder_match(self, cond: ConditionFieldEqualsValueExpression, like: str) -> str:
        """`%internal_domains%` and the other lists Reclaim keeps: matched against the case's
        table at query time, each placeholder standing for any of its values."""
        if cond.field in ELEMENTS:
            raise SigmaFeatureNotSupportedByBackendError(f"a placeholder on the list field '{cond.field}'")
        assert isinstance(cond.value, SigmaString)
        pieces: list[str] = []
        tables: list[str] = []
        for part in cond.value.s:
            if isinstance(part, str):
                pieces.append(sql_text(_like_escaped(part)))
            elif isinstance(part, Placeholder):
                if part.name not in LISTS:
                    known = ", ".join(f"%{n}%" for n in LISTS)
                    raise SigmaFeatureNotSupportedByBackendError(
                        f"placeholder %{part.name}% has no values here (Reclaim fills {known})"
                    )
                table, column = LISTS[part.name]
                alias = f"rc_p{len(tables)}"
                tables.append(f"{table} AS {alias}")
                value = f"{alias}.{column}"
                pieces.append(f"replace(replace(replace({value}, '\\', '\\\\'), '%', '\\%'), '_', '\\_')")
            elif part == SpecialChars.WILDCARD_MULTI:
                pieces.append("'%'")
            else:
                pieces.append("'_'")
        pattern = " || ".join(pieces)
        field_sql = self.escape_and_quote_field(cond.field)
        return f"EXISTS (SELECT 1 FROM {', '.join(tables)} WHERE {field_sql} {like} {pattern} ESCAPE '\\')"

    def convert_condition_field_eq_val_num(
        self, cond: ConditionFieldEqualsValueExpression, state: ConversionState
    ) -> str | DeferredQueryExpression:
        field_sql = self.escape_and_quote_field(cond.field)
        if cond.field == "record_type":  # the table keeps the type's name; the UAL writes its number
            return f"{field_sql} = rc_record_type({cond.value})"
        return f"TRY_CAST({field_sql} AS DOUBLE) = {cond.value}"

    def convert_condition_field_eq_val_bool(
        self, cond: ConditionFieldEqualsValueExpression, state: ConversionState
    ) -> str | DeferredQueryExpression:
        assert isinstance(cond.value, SigmaBool)
        return f"lower({self.escape_and_quote_field(cond.field)}) = '{str(cond.value.boolean).lower()}'"

    def convert_condition_val_str(
        self, cond: ConditionValueExpression, state: ConversionState
    ) -> str | DeferredQueryExpression:
        raise SigmaFeatureNotSupportedByBackendError("values without a field (keyword search)")

    def finalize_query_default(self, rule: Any, query: str, index: int, state: ConversionState) -> str:
        return query


# -- Sigma files as rules ------------------------------------------------------------------
# A Sigma match is one audit record: the finding is about the account that did it (UserId),
# else the mailbox's owner; neither (a system or an application) makes it a tenant finding.
_QUERY = """SELECT lower(coalesce(CASE WHEN contains(user_id, '@') THEN user_id END, mailbox_owner)) AS upn,
       time, [rc_row(evidence_id, record_no)] AS evidence,
       concat({prefix}, coalesce(operation, 'an audit record'), ' by ' || user_id, ' from ' || client_ip,
              ' on ''' || object_id || '''', ' (' || workload || ')') AS summary
FROM audit
WHERE {where}"""


@dataclass
class Loaded:
    rules: list[Rule] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)


def _placeholder_rule(path: Path, rule_id: str = "", title: str = "") -> Rule:
    """A stand-in for a file or rule that could not be made into one, so it can be reported."""
    return Rule(
        rule_id or f"sigma:{path.stem}", title or path.name, "low", "I1", "", "", (), (), ("audit",), "",
        path, False,
    )  # fmt: skip


def _reason(exc: BaseException) -> str:
    text = str(exc.args[0]) if isinstance(exc, SigmaError) and exc.args else str(exc)
    return " ".join(text.split()) or type(exc).__name__


def sigma_rule_id(sigma_rule: SigmaRule | Any, path: Path, index: int = 0) -> str:
    """``sigma:<id>``; without an id the file name (and the rule's place, after a file's first)."""
    if sigma_rule.id:
        return f"sigma:{sigma_rule.id}"
    return f"sigma:{path.stem}" + (f"#{index + 1}" if index else "")


def to_rule(sigma_rule: SigmaRule, path: Path, where: str, rule_id: str, index: int = 0) -> Rule:
    """One converted Sigma rule as a rule the engine runs (``docs/findings.md``: Sigma findings);
    its query_line is its place in the file, so a problem found later names it."""
    level = str(sigma_rule.level.name).lower() if isinstance(sigma_rule.level, SigmaLevel) else "medium"
    techniques = [
        t.name.upper() for t in sigma_rule.tags
        if t.namespace == "attack" and re.fullmatch(r"t\d{4}(\.\d{3})?", t.name.lower())
    ]  # fmt: skip
    title = " ".join((sigma_rule.title or path.stem).split())
    query = _QUERY.format(prefix=sql_text(f"Sigma '{title}': "), where=where)
    return Rule(
        rule_id, title, _LEVELS.get(level, "medium"), "I1", ", ".join(techniques),
        " ".join((sigma_rule.description or "").split()),
        tuple(str(f) for f in sigma_rule.falsepositives), (), ("audit",), query, path, False, index + 1,
    )  # fmt: skip


def load(paths: Iterable[Path]) -> Loaded:
    """Every Sigma rule under ``paths`` that can run on the audit table, and every one that
    cannot, with the file and the reason. Never raises for a rule's fault."""
    backend = DuckDBBackend()
    loaded = Loaded()
    seen: dict[str, Path] = {}

    def skip(path: Path, reason: str, rule_id: str = "", title: str = "") -> None:
        loaded.skipped.append(Skipped(_placeholder_rule(path, rule_id, title), f"{path}: {reason}"))

    for path in rule_files(paths, nested=True):
        try:
            text = path.read_text(encoding="utf-8")
            collection = SigmaCollection.from_yaml(text, collect_errors=True)
        except (OSError, UnicodeDecodeError) as exc:
            skip(path, f"cannot read: {exc}")
            continue
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            line = f" (line {mark.line + 1})" if mark else ""
            skip(path, f"not valid YAML{line}: {getattr(exc, 'problem', None) or exc}")
            continue
        except Exception as exc:  # pySigma's parser on a hostile or odd file: report, go on
            skip(path, f"not a Sigma rule: {_reason(exc)}")
            continue
        if not collection.rules and collection.errors:
            skip(path, f"not a Sigma rule: {_reason(collection.errors[0])}")
        elif not collection.rules:
            skip(path, "no Sigma rule in the file")
        for index, sigma_rule in enumerate(collection.rules):
            rid = sigma_rule_id(sigma_rule, path, index)
            title = " ".join(str(sigma_rule.title or path.name).split())
            if not isinstance(sigma_rule, SigmaRule):
                skip(path, "correlation rules and filters are not supported", rid, title)
                continue
            if sigma_rule.errors:
                skip(path, f"not a valid Sigma rule: {_reason(sigma_rule.errors[0])}", rid, title)
                continue
            if rid in seen:
                skip(path, f"id {rid.removeprefix('sigma:')} is already used by {seen[rid]}", rid, title)
                continue
            try:
                where = backend.convert_rule(sigma_rule)
            except Exception as exc:  # conversion errors come as several exception types
                source = sigma_rule.logsource
                if _reason(exc) == NOT_THE_UAL:
                    named = (
                        ("product", source.product),
                        ("service", source.service),
                        ("category", source.category),
                    )
                    its = ", ".join(f"{k} {v}" for k, v in named if v) or "none"
                    skip(path, f"{_reason(exc)}; this rule's: {its}", rid, title)
                else:
                    skip(path, f"cannot be converted: {_reason(exc)}", rid, title)
                continue
            if not where:
                skip(path, "the detection converted to no condition", rid, title)
                continue
            seen[rid] = path
            clause = " OR ".join(f"({w})" for w in where) if len(where) > 1 else where[0]
            loaded.rules.append(to_rule(sigma_rule, path, clause, rid, index))
    # the generated SQL compiled against the empty schema (an RE2-invalid regex shows here)
    checked = check_queries((r.query, r.requires) for r in loaded.rules)
    for rule, result in list(zip(loaded.rules, checked, strict=True)):
        if result.problems:
            loaded.rules.remove(rule)
            skip(rule.path, result.problems[0], rule.id, rule.title)
    return loaded


# -- native rules as Sigma -----------------------------------------------------------------
# Why a rule without a `sigma:` section cannot be one: what its query does beyond a filter.
_BEYOND_A_FILTER = (
    ("group by", "it counts or groups records"),
    ("over (", "it compares records with the user's earlier ones"),
    ("rc_is_external", "it needs the tenant's own domains"),
    ("rc_words_in", "it matches word lists in six languages"),
    ("rc_ips", "it needs IP networks and locations"),
    ("rule_changes", "it reads inbox rules as changed and as they are now"),
    ("mailbox_owners", "it resolves mailboxes to their owners"),
    ("unnest(", "it compares values inside the record's lists"),
    ("rc_param(", "it tests a parameter's value, not only its name"),
    ("regexp_extract", "it parses values out of the record's text"),
    ("json_", "it reads JSON inside the record's values"),
)
# Lists a `|expand` placeholder may name that are the same everywhere: written out on export.
# (%internal_domains% stays a placeholder: each SIEM fills in its own tenant's domains.)
_STATIC_LISTS = ("microsoft_mail_clients",)


class _Dumper(yaml.SafeDumper):
    """SigmaHQ's layout: four spaces, list items indented under their key."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)


def sigma_id(rule_id: str) -> uuid.UUID:
    """The exported rule's id: stable across exports, a UUID5 of the native rule id."""
    return uuid.uuid5(uuid.NAMESPACE_URL, f"reclaim:rule:{rule_id}")


def not_exportable(rule: Rule) -> str:
    """Why the rule has no Sigma form, or '' when it has one (a `sigma:` section)."""
    if rule.sigma is not None:
        return ""
    reads = sorted({alt for r in rule.requires for alt in r.split("|")})
    if "audit" not in reads:
        return f"reads {', '.join(reads)}: Sigma's m365 log sources are the Unified Audit Log"
    query = " ".join(rule.query.lower().split())
    how = [what for marker, what in _BEYOND_A_FILTER if marker in query]
    return "selects its audit records by more than a filter on single records" + (
        f" ({'; '.join(how)})" if how else ""
    )


def _inline_lists(value: Any) -> Any:
    """The detection with `Field|expand: '%list%'` of a static list written out as its values."""
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            name = item[1:-1] if isinstance(item, str) and item.startswith("%") and item.endswith("%") else ""
            if isinstance(key, str) and key.endswith("|expand") and name in _STATIC_LISTS:
                out[key.removesuffix("|expand")] = [str(v) for v in context.lists()[name]]
            else:
                out[key] = _inline_lists(item)
        return out
    if isinstance(value, list):
        return [_inline_lists(v) for v in value]
    return value


def document(rule: Rule) -> dict[str, Any]:
    """The Sigma rule for a native rule with a `sigma:` section (SigmaHQ's field order)."""
    assert rule.sigma is not None
    also = sorted({alt for r in rule.requires for alt in r.split("|")} - {"audit"})
    scope = (
        f" Reclaim's rule also reads {', '.join(also)}; this one covers the audit records." if also else ""
    )
    return {
        "title": rule.title,
        "id": str(sigma_id(rule.id)),
        "status": "experimental",
        "description": f"{rule.description}{scope} Exported from Reclaim's rule {rule.id}.",
        "author": "Reclaim",
        "tags": [f"attack.{t.strip().lower()}" for t in rule.mitre.split(",") if t.strip()],
        "logsource": {"product": "m365", "service": rule.sigma.get("service", "audit")},
        "detection": _inline_lists(rule.sigma["detection"]),
        "falsepositives": list(rule.false_positives) or ["Unknown"],
        "level": rule.severity,
    }


@dataclass
class Exported:
    written: list[tuple[Rule, Path]] = field(default_factory=list)
    not_exported: list[tuple[Rule, str]] = field(default_factory=list)


def export(rules: Iterable[Rule], folder: Path) -> Exported:
    """Write ``<rule id>.yml`` for each rule Sigma can express; each file is loaded back by
    pySigma and converted before it is written, so a SIEM gets only rules that parse."""
    result = Exported()
    backend = DuckDBBackend()
    for rule in sorted(rules, key=lambda r: r.id):
        reason = not_exportable(rule)
        if reason:
            result.not_exported.append((rule, reason))
            continue
        text = yaml.dump(
            document(rule), Dumper=_Dumper, indent=4, sort_keys=False, allow_unicode=True, width=100
        )
        try:
            collection = SigmaCollection.from_yaml(text)
            parsed = collection.rules[0]
            assert isinstance(parsed, SigmaRule)
            backend.convert_rule(parsed)
        except Exception as exc:  # the rule author's section: reported, the others go on
            result.not_exported.append((rule, f"its sigma section does not convert: {_reason(exc)}"))
            continue
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{rule.id}.yml"
        path.write_text(text, encoding="utf-8")
        result.written.append((rule, path))
    return result
