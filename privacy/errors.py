"""The one error hierarchy of the platform: ``PipelineError`` and its families.

Every message says what failed, on which input, and what to do next, and never carries a
raw data value: messages end up in Prefect logs, quarantine reports, the dashboard and the
command line. Put counts, column names and rule names in them, nothing read from a row.

>>> issubclass(ContractViolation, InputRejected), ContractViolation.kind
(True, 'contract_violation')
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from privacy.budget import PrivacyLoss


class PipelineError(Exception):
    """Root of every error the platform raises on purpose.

    >>> raise PipelineError("object store unreachable at http://127.0.0.1:9000; is it running?")
    Traceback (most recent call last):
    privacy.errors.PipelineError: object store unreachable at http://127.0.0.1:9000; is it running?
    """

    #: short machine-readable family name used in run records and reports
    kind = "error"

    def __init__(self, message: str) -> None:
        # one line, always: CLIs print it as is and reports store it as is
        super().__init__(" ".join(str(message).split()))

    @property
    def reason(self) -> str:
        return str(self)


class ContractError(PipelineError):
    """A dataset contract is missing or broken.

    >>> raise ContractError(  # doctest: +ELLIPSIS
    ...     "contracts/employees.yaml: columns.efficiency.bounds: lower bound above upper"
    ... )
    Traceback (most recent call last):
    privacy.errors.ContractError: contracts/employees.yaml: columns.efficiency.bounds: lower bound ...
    """

    kind = "contract"


class InputRejected(PipelineError):
    """A file cannot be used: unreadable, wrong format, or it breaks its contract.

    The file is moved intact to quarantine with this reason.

    >>> raise InputRejected("landing/employees/a.csv: 3 rows have 9 fields, the header has 7")
    Traceback (most recent call last):
    privacy.errors.InputRejected: landing/employees/a.csv: 3 rows have 9 fields, the header has 7
    """

    kind = "rejected"


class ContractViolation(InputRejected):
    """A readable file does not satisfy its dataset contract.

    >>> raise ContractViolation("column 'efficiency': 12 of 1000 values are not numbers")
    Traceback (most recent call last):
    privacy.errors.ContractViolation: column 'efficiency': 12 of 1000 values are not numbers
    """

    kind = "contract_violation"


class BudgetExhausted(PipelineError):
    """A release would take a dataset over its privacy budget; nothing was released.

    The fields say the same as the message, for surfaces that format it themselves:
    ``pending`` the loss asked for, ``spent`` what counts already (committed plus
    ``reserved``, held by runs still in progress), ``cap`` the dataset's cap.

    >>> from privacy.budget import PrivacyLoss
    >>> raise BudgetExhausted(  # doctest: +ELLIPSIS
    ...     "dataset 'employees': pending ε=1 would exceed the cap ε=10 (spent 9.5, remaining 0.5)",
    ...     dataset="employees", pending=PrivacyLoss(1.0), spent=PrivacyLoss(9.5),
    ...     cap=PrivacyLoss(10.0),
    ... )
    Traceback (most recent call last):
    privacy.errors.BudgetExhausted: dataset 'employees': pending ε=1 would exceed the cap ε=10 (spent ...
    """

    kind = "budget_exhausted"

    def __init__(
        self,
        message: str,
        *,
        dataset: str | None = None,
        pending: PrivacyLoss | None = None,
        spent: PrivacyLoss | None = None,
        cap: PrivacyLoss | None = None,
        reserved: PrivacyLoss | None = None,
    ) -> None:
        super().__init__(message)
        self.dataset = dataset
        self.pending = pending
        self.spent = spent
        self.cap = cap
        self.reserved = reserved


class BudgetTermsChanged(PipelineError):
    """A dataset's contract differs from the budget terms pinned in the aggregate store at
    its first registration (ε cap, δ cap, policy, window, privacy unit, rows per unit);
    nothing was released. Only an operator changes pinned terms, with
    ``privacy-analytics budget set``, which logs every change.

    ``changes`` lists the differing settings (``analytics.store.terms.SettingChange``:
    ``setting``, ``old``, ``new``, ``weakens``, ``effect``), as the message names them.

    >>> raise BudgetTermsChanged(  # doctest: +ELLIPSIS
    ...     "dataset 'employees': the contract changes its pinned budget terms: epsilon_cap 50 -> 60 "
    ...     "(raises the cap); nothing was released. If your privacy policy allows it, an operator "
    ...     'runs: privacy-analytics budget set employees --epsilon-cap 60 --force --reason "..."'
    ... )
    Traceback (most recent call last):
    privacy.errors.BudgetTermsChanged: dataset 'employees': the contract changes its pinned budget ...
    """

    kind = "terms_changed"

    def __init__(self, message: str, *, changes: Sequence[Any] = ()) -> None:
        super().__init__(message)
        self.changes: list[Any] = list(changes)


class TermsChangeRefused(PipelineError):
    """An operator's change of pinned budget terms was refused: it weakens the guarantee
    without ``--force``, names an unknown dataset, or changes nothing; nothing was changed.

    >>> raise TermsChangeRefused(  # doctest: +ELLIPSIS
    ...     "dataset 'employees': this change weakens the guarantee and needs --force: "
    ...     "epsilon_cap 50 -> 60 (raises the cap); nothing was changed. If your privacy policy "
    ...     "allows it, run again with --force"
    ... )
    Traceback (most recent call last):
    privacy.errors.TermsChangeRefused: dataset 'employees': this change weakens the guarantee and needs ...
    """

    kind = "terms_refused"


class StorageUnavailable(PipelineError):
    """The object store or the aggregate store cannot be reached; retrying may help.

    >>> raise StorageUnavailable("aggregate store at sqlite:///x.db: database is locked")
    Traceback (most recent call last):
    privacy.errors.StorageUnavailable: aggregate store at sqlite:///x.db: database is locked
    """

    kind = "storage"


class InvalidKey(PipelineError):
    """An object key or dataset name is not allowed (path traversal, unsafe characters).

    >>> raise InvalidKey("dataset name '../etc' may only use letters, digits, '-' and '_'")
    Traceback (most recent call last):
    privacy.errors.InvalidKey: dataset name '../etc' may only use letters, digits, '-' and '_'
    """

    kind = "invalid_key"
