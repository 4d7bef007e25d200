"""The concerns of a request's life that are not its bytes, deadlines and retry and fallback decisions: each one
plug-in (rewrite/lifecycle/hooks.py), one folder or file and one line below (the conversation state's folder is
rewrite/conversation/, which the key-value stores beneath it share with no plug-in). The engine makes one of each; the
spine (rewrite/exchange/) announces the request's events to them and knows none by name. None reads what another
writes: what one tells another goes through the events (an early pick held for affinity: `Plugin.holding`)."""

from rewrite.conversation.plugin import ConversationState
from rewrite.lifecycle.hooks import register
from rewrite.plugins.accounting import Accounting
from rewrite.plugins.affinity import ConversationAffinity
from rewrite.plugins.clients import ClientSpending
from rewrite.plugins.hedging import HedgedFirstTokens
from rewrite.plugins.payers import WhoPays
from rewrite.plugins.quirks import Quirks
from rewrite.plugins.steps import Steps
from rewrite.plugins.trail import DecisionTrail
from rewrite.plugins.windows import Windows

BUILTIN = (ConversationState, ConversationAffinity, Windows, ClientSpending, WhoPays, Quirks, Steps, Accounting,
           DecisionTrail, HedgedFirstTokens)
for _plugin in BUILTIN:
    register(_plugin)
