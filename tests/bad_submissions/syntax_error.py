"""A learner's file with a syntax error."""


def build_scheduler(:
    pass
