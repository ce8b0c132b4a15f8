"""``codecgen fuzz``: coverage-guided (libFuzzer) and differential fuzzing of generated codecs.

Modules: ``build`` (the libFuzzer binary around a codec folder), ``inputs`` (input layout,
seeds, dictionary), ``libfuzzer`` (worker processes, progress, crashes), ``spans`` (where each
field of a concrete frame lies), ``differential`` (structure-aware cases compared between the
reference codec and the C++ codec), ``findings`` and ``pcap`` (reproducers), ``cli``.
See FUZZING.md.
"""
