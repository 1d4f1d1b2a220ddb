"""Analytics: the analyses (what each asks OpenDP for, and how results become published
values and sentences), auto bounds, insight wording and the aggregate store.

    from analytics.analyses import release_analyses, plan_release
    from analytics.store import AggregateStore, ReadOnlyStore
"""
