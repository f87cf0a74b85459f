"""Resolution's domain as plain functions and data (R3.1-R3.10): what a case and an
adverse event may become, what the law grants, who may approve what, and each
action on them. No I/O and no clock: the service passes in the document, the
request, who acts, the policy and `now`, and writes what comes back.

Nothing here imports the web, messaging or store edges (a unit test checks): a
refusal is an exception of errors.py, which the service answers as HTTP and RPC
do; events are data (mallcare_common.contracts) that the service puts in the
outbox. Amounts are integer fen.

    errors       the domain's refusals
    states       the case state machine
    step         who acts, and what one action does (Step)
    compliance   what the law grants and the caps (R3.4)
    authority    who may approve what, the escalation ladder (R3.5)
    opening      a triaged complaint's new case
    actions      each action on a case, and the ACTIONS table
    incidents    adverse events reported by a store (R3.9), and their actions
"""
