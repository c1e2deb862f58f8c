from nam_core.intermediates import mark_damaged_outputs


def get_output_patterns():
    """(path pattern, rule, whether the rule has inputs) of every output of the workflow."""
    return [
        (str(pattern), rule.name, bool(rule.input))
        for rule in workflow.rules
        for pattern in rule.output
    ]


# a damaged output of this cohort is rebuilt, with everything made from it (nam_core.io)
if workflow.is_main_process:
    for message in mark_damaged_outputs(get_output_patterns(), out("")):
        print(f"NAM: {message}", file=sys.stderr)
