"""AWS Secrets Manager as a `SecretsProvider` (the `aws` extra: aioboto3).

    provider.py     `AwsSecretsManagerProvider`: one client, every read names a stage, the
                    current version cached (TTL, single flight, stale on error), retries
                    with backoff and jitter within a budget, replica regions as failover
    regions.py      `Region`, `RegionFailover`: the order of regions and the way back
    classify.py     the SDK's and the transport's errors as `secretswap` errors, with hints

Importing `secretswap` loads none of this; `import secretswap.aws` loads aioboto3.
"""

from secretswap.aws.provider import AwsSecretsManagerProvider, SecretSink
from secretswap.aws.regions import Region, RegionFailover

__all__ = ["AwsSecretsManagerProvider", "Region", "RegionFailover", "SecretSink"]
