"""Store: the SQLite database a build writes (``database``: schema, writes, atomic swap),
the codes per excerpt and case kept current by builds and saves (``summaries``), and the
inputs fingerprint that lets an unchanged corpus skip the build (``fingerprint``)."""
