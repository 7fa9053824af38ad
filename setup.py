"""Packaging for glue-replay.

On AWS Glue, Spark, Delta Lake and awsglue are provided by the runtime (``--datalake-formats delta``),
so they are not install requirements: the ``local`` extra pins them for local runs at Glue 5.1 parity.
"""

from setuptools import find_packages, setup

LOCAL = ["pyspark==3.5.6", "delta-spark==3.3.2"]
#: AWS Glue 6.0's Spark line (Spark 4.1.1, Scala 2.13, Delta Lake 4.2.0), for `make test-spark4`:
#: the `dev-spark4` extra is `dev` with these pins instead of LOCAL's.
SPARK4 = ["pyspark==4.1.1", "delta-spark==4.2.0"]
#: The operator CLI: `glue-replay status` reads the runs ledger with delta-rs (no JVM).
CLI = ["deltalake==1.6.6"]
#: The Kafka sink's client (a wheel with librdkafka inside); the AWS sinks need only boto3.
KAFKA = ["confluent-kafka==2.16.1"]
#: Everything a developer runs besides Spark and Delta themselves.
TOOLS = [
    *KAFKA,
    "pytest==9.2.0",
    "pytest-xdist==3.8.0",  # `make test PYTEST_WORKERS=2`: the suite on 2 workers
    "chispa==0.12.0",
    *CLI,
    "moto[events,glue,s3,sts]==5.2.5",
    "flask==3.1.3",  # moto_server, for the test that drives it with the real AWS CLI
    "flask-cors==6.0.5",
    "awscli==1.46.3",
    "ruff==0.17.6",
    "mypy==2.4.1",
    "python-hcl2==8.1.4",
    "hypothesis==6.170.17",  # the model-based test of every replay invariant
]
DEV = [*LOCAL, *TOOLS]
DEV_SPARK4 = [*SPARK4, *TOOLS]

setup(
    name="glue-replay",
    version="0.1.0",
    description="Replayable AWS Glue PySpark jobs: ingest -> normalize -> Delta outbox",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.11",
    package_dir={"": "lib"},
    # The sample API and other development-only code (glue_replay_devtools) stay out of the
    # wheel that Glue installs; the tests and the demo put lib/ on their path.
    packages=find_packages("lib", exclude=["glue_replay_devtools", "glue_replay_devtools.*"]),
    package_data={"glue_replay": ["py.typed"], "glue_replay_examples": ["py.typed"]},
    install_requires=["boto3>=1.34"],
    extras_require={
        "local": LOCAL,
        "cli": CLI,
        "kafka": KAFKA,
        "dev": DEV,
        "spark4": SPARK4,
        "dev-spark4": DEV_SPARK4,
    },
    entry_points={
        "console_scripts": ["glue-replay = glue_replay.trigger.cli:main"],
        # The bundled pipelines, found by the CLI and the demo like any user's.
        "glue_replay.pipelines": [
            "customers = glue_replay_examples.customers:PIPELINE",
            "orders = glue_replay_examples.orders:PIPELINE",
        ],
    },
)
