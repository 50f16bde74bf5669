"""tracefix: debug and repair failing Python code from its real execution.

    tracefix.errors, tracefix.config   the bottom: the two kinds of errors, the settings
    tracefix.tracer                    runs the tests, records what they executed (no LLM code)
    tracefix.debugger                  traces -> judgments (prompts, model client, answers, call tree)
    tracefix.repair                    judgments and searches -> validated patches
    tracefix.cli                       the commands and the editor/hook integrations, on top

Imports point down this list only. Keep this module free of imports: the traced child
process imports it first, and it must stay as light as the tracer.
"""
