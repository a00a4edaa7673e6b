"""Feature services: what a model consumes, versioned by name.

A model records the service name and a fingerprint of its definitions (`features.json` in the
run directory); `augrec features check` fails when the store no longer matches. To change what
a service serves, add `<name>_v<N+1>` (over new view names) and keep the old one until no
deployed model uses it.
"""

from feast import FeatureService
from views import item_attributes, item_popularity, user_activity, user_history

from augrec.features import spec

recommender_v1 = FeatureService(
    name=spec.RECOMMENDER_SERVICE,
    features=[user_history, user_activity],
    description="Per-user inputs of the recommender: recent history and activity.",
)

item_catalog_v1 = FeatureService(
    name=spec.ITEM_CATALOG_SERVICE,
    features=[item_attributes, item_popularity],
    description="Per-item side information: attributes and popularity.",
)
