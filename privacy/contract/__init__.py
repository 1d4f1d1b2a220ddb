"""Dataset contracts: what each column is, how it is masked, and what may be released.

A contract is a YAML file, ``<contracts dir>/<dataset>.yaml``, that a data owner reads and
reviews; everything the DP engine needs that must not come from the data (bounds, public
keys, the privacy unit, rows per unit, budget) comes from it.

>>> contract = parse_contract('''
... dataset: employees
... privacy_unit: employee_id
... max_rows_per_unit: 12
... budget: {epsilon_cap: 20, delta: 1.0e-6, epsilon_per_release: 1.0}
... columns:
...   employee_id: {role: identifier, type: string, action: pseudonymize}
...   team:        {role: dimension, type: string, keys: [Atlas, Borealis]}
...   efficiency:  {role: measure, type: float, bounds: [0, 2]}
... ''')
>>> contract.columns["team"].keys, contract.budget.releases_allowed
(['Atlas', 'Borealis'], 20)
"""

from privacy.contract.analyses import (
    Analysis,
    ComparisonAnalysis,
    CorrelationAnalysis,
    DistributionAnalysis,
    ExtraAnalysis,
    ForecastAnalysis,
    SummaryAnalysis,
    TrendAnalysis,
    register_analysis,
)
from privacy.contract.columns import AutoBounds, Column
from privacy.contract.dataset import (
    Anonymity,
    Budget,
    CsvOptions,
    DatasetRelease,
    LDiversity,
    ReleaseWindow,
)
from privacy.contract.enums import ColumnType, Granularity, Missing, Role
from privacy.contract.generalizations import (
    BandGeneralization,
    DateGeneralization,
    Generalization,
    PrefixGeneralization,
    TopCodeGeneralization,
)
from privacy.contract.loading import (
    contract_json_schema,
    find_contract,
    load_contract,
    parse_contract,
)
from privacy.contract.model import Contract
from privacy.contract.periods import MAX_PERIODS, PeriodRange, period_index

__all__ = [
    "MAX_PERIODS",
    "Analysis",
    "Anonymity",
    "AutoBounds",
    "BandGeneralization",
    "Budget",
    "Column",
    "ColumnType",
    "ComparisonAnalysis",
    "Contract",
    "CorrelationAnalysis",
    "CsvOptions",
    "DatasetRelease",
    "DateGeneralization",
    "DistributionAnalysis",
    "ExtraAnalysis",
    "ForecastAnalysis",
    "Generalization",
    "Granularity",
    "LDiversity",
    "Missing",
    "PeriodRange",
    "PrefixGeneralization",
    "ReleaseWindow",
    "Role",
    "SummaryAnalysis",
    "TopCodeGeneralization",
    "TrendAnalysis",
    "contract_json_schema",
    "find_contract",
    "load_contract",
    "parse_contract",
    "period_index",
    "register_analysis",
]
