"""The single-entity operations of the API: reads by id and every write, declared once.

CONTRACT §5.3.2 and §5.5.2 (reads by id) and §5.10 (writes): method, path, the /groups access
flag that gates it, the official schema files that describe it, what a success answers, whether
a repeat is safe, and where what the backend sends departs from the official schema. The
sandbox routes and answers them from this table; tests validate its answers against the schemas
named here, allowing exactly the deviations written here and no others.
"""

from dataclasses import dataclass
from enum import StrEnum


class Answer(StrEnum):
    """Body of a success answer."""

    ENVELOPE = "envelope"  # {"success": true, "data": ..., "meta": []}
    BARE_OBJECT = "bare_object"  # the promotion object itself (CONTRACT §1.4)
    NO_BODY = "no_body"  # the status line alone


@dataclass(frozen=True)
class Operation:
    """One read-by-id or write of a chain's loyalty catalogue or of a sold membership."""

    name: str
    method: str
    path: str  # relative to the base URL, with {placeholders} (ids are integers)
    # Official schema file stem (`<stem>.<status>.schema.json`, `<stem>.request.schema.json`).
    schema: str
    success_status: int
    answer: Answer
    # The /groups access flag whose "0" refuses the call with 403; None = the backend checks
    # no right at all (nor, for archive, that the entity belongs to the chain in the path).
    access_flag: str | None
    # Whether repeating the call after a lost answer leaves the same end state (§5.10.7).
    retry_safe: bool
    contract_section: str
    # What the sandbox (like the backend) sends where the official success schema says
    # otherwise; empty when the answer validates as is. The two fields after it say the same
    # as data, for the tests that validate answers.
    deviation: str = ""
    # Dotted paths in the success body that may be null although the schema says otherwise.
    nullable_in_answer: tuple[str, ...] = ()
    # Another documented success status (answered with no body).
    alternative_status: int | None = None
    # Only Altegio super users may call it; everyone else gets 403 (§5.10.2, restore).
    super_user_only: bool = False

    @property
    def writes(self) -> bool:
        return self.method != "GET"


_TYPES = "/chain/{chain_id}/loyalty/abonement_types"
_TYPE = _TYPES + "/{membership_type_id}"
_MEMBERSHIP = "/chain/{chain_id}/loyalty/abonements/{membership_id}"
_CERTIFICATES = "/chain/{chain_id}/loyalty/certificate_types"
_CERTIFICATE = _CERTIFICATES + "/{certificate_type_id}"
_PROGRAMS = "/chain/{chain_id}/loyalty/programs"
_PROGRAM = _PROGRAMS + "/{program_id}"

TYPES_FLAG = "loyalty_abonement_types_access"
# Which flag gates freeze/unfreeze is not documented; Altegio's client calls the period flag
# "change memberships", the closest fit (§5.10.1).
PERIOD_FLAG = "loyalty_abonement_period_edit_access"
BALANCE_FLAG = "loyalty_abonement_balance_edit_access"
CERTIFICATES_FLAG = "loyalty_certificate_types_access"
PROGRAMS_FLAG = "loyalty_programs_access"

NO_BODY_204 = (
    "the schema gives the 204 a {success, data: null, meta: []} body; a 204 carries no body "
    "in HTTP, so none is sent (clients accept both)"
)

OPERATIONS: dict[str, Operation] = {
    op.name: op
    for op in (
        Operation(
            name="membership_type",
            method="GET",
            path=_TYPE,
            schema="GET_chain_loyalty_abonement_types_id",
            success_status=200,
            answer=Answer.ENVELOPE,
            access_flag=TYPES_FLAG,
            retry_safe=True,
            contract_section="§5.3.2",
        ),
        Operation(
            name="membership_type_create",
            method="POST",
            path=_TYPES,
            schema="POST_chain_loyalty_abonement_types",
            success_status=201,
            answer=Answer.ENVELOPE,
            access_flag=TYPES_FLAG,
            retry_safe=False,
            contract_section="§5.10.2",
        ),
        Operation(
            name="membership_type_update",
            method="PUT",
            path=_TYPE,
            schema="PUT_chain_loyalty_abonement_types_id",
            success_status=200,
            answer=Answer.ENVELOPE,
            access_flag=TYPES_FLAG,
            retry_safe=True,
            contract_section="§5.10.2",
        ),
        Operation(
            name="membership_type_delete",
            method="DELETE",
            path=_TYPE,
            schema="DELETE_chain_loyalty_abonement_types_id",
            success_status=204,
            answer=Answer.NO_BODY,
            access_flag=TYPES_FLAG,
            retry_safe=True,
            contract_section="§5.10.2",
            deviation=NO_BODY_204,
        ),
        Operation(
            name="membership_type_clone",
            method="POST",
            path=_TYPE + "/clone",
            schema="POST_chain_loyalty_abonement_types_id_clone",
            success_status=201,
            answer=Answer.ENVELOPE,
            access_flag=TYPES_FLAG,
            retry_safe=False,
            contract_section="§5.10.2",
        ),
        Operation(
            name="membership_type_restore",
            method="POST",
            path=_TYPE + "/restore",
            schema="POST_chain_loyalty_abonement_types_id_restore",
            success_status=204,
            answer=Answer.NO_BODY,
            access_flag=TYPES_FLAG,
            retry_safe=False,
            contract_section="§5.10.2",
            super_user_only=True,
        ),
        Operation(
            name="membership_type_archive",
            method="PATCH",
            path=_TYPE + "/archive",
            schema="PATCH_chain_loyalty_abonement_types_id_archive",
            success_status=204,
            answer=Answer.NO_BODY,
            access_flag=None,
            retry_safe=True,
            contract_section="§5.10.2",
        ),
        Operation(
            name="membership_freeze",
            method="POST",
            path=_MEMBERSHIP + "/freeze",
            schema="POST_chain_loyalty_abonements_id_freeze",
            success_status=200,
            answer=Answer.ENVELOPE,
            access_flag=PERIOD_FLAG,
            retry_safe=False,
            contract_section="§5.10.3",
        ),
        Operation(
            name="membership_unfreeze",
            method="POST",
            path=_MEMBERSHIP + "/unfreeze",
            schema="POST_chain_loyalty_abonements_id_unfreeze",
            success_status=200,
            answer=Answer.ENVELOPE,
            access_flag=PERIOD_FLAG,
            retry_safe=True,
            contract_section="§5.10.3",
        ),
        Operation(
            name="membership_set_balance",
            method="POST",
            path=_MEMBERSHIP + "/set_balance",
            schema="POST_chain_loyalty_abonements_id_set_balance",
            success_status=200,
            answer=Answer.NO_BODY,
            access_flag=BALANCE_FLAG,
            retry_safe=True,
            contract_section="§5.10.3",
            deviation="the schema gives the 200 a data body; the backend sends none [altegio-mcp]",
        ),
        Operation(
            name="membership_set_period",
            method="POST",
            path=_MEMBERSHIP + "/set_period",
            schema="POST_chain_loyalty_abonements_id_set_period",
            success_status=200,
            answer=Answer.ENVELOPE,
            access_flag=PERIOD_FLAG,
            retry_safe=True,
            contract_section="§5.10.3",
            deviation=(
                "data.expiration_date is null (the schema says string) for a membership not "
                "activated yet: its validity counts from an activation that has not happened"
            ),
            nullable_in_answer=("data.expiration_date",),
        ),
        Operation(
            name="certificate_type",
            method="GET",
            path=_CERTIFICATE,
            schema="GET_chain_loyalty_certificate_types_id",
            success_status=200,
            answer=Answer.ENVELOPE,
            access_flag=CERTIFICATES_FLAG,
            retry_safe=True,
            contract_section="§5.5.2",
        ),
        Operation(
            name="certificate_type_create",
            method="POST",
            path=_CERTIFICATES,
            schema="POST_chain_loyalty_certificate_types",
            success_status=200,
            answer=Answer.ENVELOPE,
            access_flag=CERTIFICATES_FLAG,
            retry_safe=False,
            contract_section="§5.10.4",
        ),
        Operation(
            name="certificate_type_update",
            method="PUT",
            path=_CERTIFICATE,
            schema="PUT_chain_loyalty_certificate_types_id",
            success_status=200,
            answer=Answer.ENVELOPE,
            access_flag=CERTIFICATES_FLAG,
            retry_safe=True,
            contract_section="§5.10.4",
        ),
        Operation(
            name="certificate_type_delete",
            method="DELETE",
            path=_CERTIFICATE,
            schema="DELETE_chain_loyalty_certificate_types_id",
            success_status=200,
            answer=Answer.ENVELOPE,
            access_flag=CERTIFICATES_FLAG,
            retry_safe=True,
            contract_section="§5.10.4",
            deviation="200 with a body, or 204 with none (both documented; a sandbox knob picks)",
            alternative_status=204,
        ),
        Operation(
            name="promotion_create",
            method="POST",
            path=_PROGRAMS,
            schema="POST_chain_loyalty_programs",
            success_status=200,
            answer=Answer.BARE_OBJECT,
            access_flag=PROGRAMS_FLAG,
            retry_safe=False,
            contract_section="§5.10.5",
        ),
        Operation(
            name="promotion_update",
            method="PUT",
            path=_PROGRAM,
            schema="PUT_chain_loyalty_programs_id",
            success_status=200,
            answer=Answer.BARE_OBJECT,
            access_flag=PROGRAMS_FLAG,
            retry_safe=True,
            contract_section="§5.10.5",
        ),
        Operation(
            name="promotion_delete",
            method="DELETE",
            path=_PROGRAM,
            schema="DELETE_chain_loyalty_programs_id",
            success_status=204,
            answer=Answer.NO_BODY,
            access_flag=PROGRAMS_FLAG,
            retry_safe=True,
            contract_section="§5.10.5",
        ),
    )
}
