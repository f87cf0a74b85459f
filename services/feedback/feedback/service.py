"""Feedback: revisits after each resolution, the customer's answers, and the case
library (R4.1-R4.4).

On case_resolved a revisit is scheduled within 24 hours, outside the mall's quiet
hours, by the way the complaint's channel and contact allow. Staff work the
worklist (reached with an answer, no answer -> retried, wrong number); customers
asked by SMS or app message answer through a signed, single-use, expiring link
that opens the answer page (answer_page.py) on the chain's public address.
A dissatisfied answer reopens the case in resolution, whose next resolution brings
the next revisit, until the customer is satisfied (resolution then closes the
case) or a supervisor closes it. High-risk cases go into the case library when
closed; handlers add typical ones with their lessons.

Beside the revisits, each mall surveys a sample of the customers whose cases closed in
the month before (R7.12, surveys.py): a round per mall and month, started by a leased timer
on the policy's day or by hand (POST /surveys/rounds); each survey's signed link opens the
same answer page with the survey's question, and its answer is counted apart from revisits.
"""

import logging
from datetime import timedelta

import eventlet
from marshmallow import ValidationError
from nameko.exceptions import RemoteError
from nameko.rpc import RpcProxy

from mallcare_common.auth import Secret
from mallcare_common.base import Service
from mallcare_common.contracts import COMPLAINT_REGISTERED, read_event
from mallcare_common.contracts import resolution as case_events
from mallcare_common.messaging import event_handler, new_outbox, outbox_dispatcher, publish_pending
from mallcare_common.mongo import leased_timer
from mallcare_common.personal import scrub
from mallcare_common.policy import PolicyFiles
from mallcare_common.rpc import ask
from mallcare_common.openapi import Op
from mallcare_common.operations import Created, operation
from mallcare_common.pages import PageLanguage
from mallcare_common.unit_of_work import change, write
from mallcare_common.web import Conflict, Forbidden, Gone, NotFound, PublicBaseUrl, http, read_form, signed

from . import answer_page, library_review, rules, surveys
from .policy import load_policy
from .schemas import (
    AnswerFormIn,
    AnswerOut,
    AnswerPageQuery,
    ArchiveIn,
    AttemptIn,
    LessonsIn,
    LibraryList,
    LibraryOut,
    LibraryQuery,
    LinkAnswerIn,
    ReviewDecisionIn,
    ReviewDoneIn,
    ReviewMonth,
    ReviewOut,
    ReviewQuery,
    RevisitList,
    RevisitOut,
    SurveyFormIn,
    SurveyOut,
    SurveyRoundIn,
    SurveyRoundOut,
    WorklistQuery,
)
from .storage import Revisits

log = logging.getLogger(__name__)

OVERDUE_INTERVAL = 30  # seconds between looks for revisits past their deadline
REVIEW_INTERVAL = 600  # seconds between looks for the libraries' monthly reviews due (R7.14)
CLOSURES_A_TICK = 200  # closures kept before the review existed, completed from resolution per look
SURVEY_INTERVAL = 600  # seconds between looks for the malls' survey rounds due (R7.12)
NOT_SEEN_PAUSE = 2  # seconds before an event about a complaint not seen yet is retried


class ComplaintNotSeenYet(Exception):
    """A resolution for a complaint feedback cannot find, here or at intake: retried."""


class FeedbackService(Service):
    name = "feedback"

    store = Revisits()
    policy = PolicyFiles("feedback.yml", load_policy)
    dispatch = outbox_dispatcher()
    answer_link_secret = Secret("ANSWER_LINK_SECRET")
    public_base_url = PublicBaseUrl()  # where customers open the answer links
    resolution = RpcProxy("resolution")
    intake = RpcProxy("intake")

    # --- events -------------------------------------------------------------------------------

    @event_handler(COMPLAINT_REGISTERED.source, COMPLAINT_REGISTERED.name)
    def handle_complaint_registered(self, body):
        """Keep what a revisit and the library need of the complaint (masked contact only)."""
        event = read_event(body, COMPLAINT_REGISTERED)
        payload = event["payload"]
        self.store.keep_complaint(
            event["complaint_no"],
            event["mall_id"],
            payload["channel"],
            payload["customer"].get("contact_masked"),
            payload["description"],
            payload["demands"],
            payload["location"],
            customer_ref=payload["customer"]["ref"],
        )

    @event_handler(case_events.CASE_RESOLVED.source, case_events.CASE_RESOLVED.name)
    def handle_case_resolved(self, body):
        """R4.1: one revisit per resolution; a redelivered event finds it and changes nothing."""
        event = read_event(body, case_events.CASE_RESOLVED)
        if self.store.closed_since(event["complaint_no"], event["occurred_at"]):
            log.info("%s: closed after this resolution (%s); no revisit", event["complaint_no"], event["event_id"])
            return  # its case_closed overtook it (one queue per event type): nobody to ask
        complaint = self.store.complaint(event["complaint_no"]) or self._complaint_from_intake(event["complaint_no"])
        now = self.clock()
        revisit, first = rules.new_revisit(event, complaint, self.policy.current, now)
        revisit.update(new_outbox(first, now))
        if self.store.insert_new(self.store.revisits, revisit):
            publish_pending(self.store.revisits, self.dispatch, self.name, now, [revisit])

    @event_handler(case_events.CASE_REOPENED.source, case_events.CASE_REOPENED.name)
    def handle_case_reopened(self, body):
        """A case reopened by hand while its revisit was pending: that revisit is moot."""
        self._cancel_open_revisits(read_event(body, case_events.CASE_REOPENED), "case reopened")

    @event_handler(case_events.CASE_CLOSED.source, case_events.CASE_CLOSED.name)
    def handle_case_closed(self, body):
        """A closed case needs no more revisits; a high-risk one goes into the library (R4.4)."""
        event = read_event(body, case_events.CASE_CLOSED)
        self.store.note_closed(event["complaint_no"], event["occurred_at"])
        self._cancel_open_revisits(event, "case closed")
        case = ask(self.access, self.resolution.get_case, event["complaint_no"])
        self.store.keep_closed_case(case)
        if case["risk_level"] in self.policy.current.rules["library"]["automatic_risk_levels"]:
            self._archive(case, lessons=None, by="feedback", automatic=True)

    @leased_timer(OVERDUE_INTERVAL, lease="overdue", ttl=timedelta(seconds=OVERDUE_INTERVAL))
    def report_overdue(self, lease):
        """revisit_overdue, once per revisit past its 24 hours (one replica at a time)."""
        now = self.clock()
        for revisit in self.store.overdue(now, limit=200):
            updated = write(
                self.store.revisits, revisit, {"$set": {"overdue_reported": True}}, [rules.overdue(revisit, now)], now
            )
            if updated is not None:
                publish_pending(self.store.revisits, self.dispatch, self.name, now, [updated])

    @leased_timer(REVIEW_INTERVAL, lease="library-review", ttl=timedelta(seconds=REVIEW_INTERVAL))
    def remind_library_reviews(self, lease):
        """R7.14: from the policy's day of the month on, each mall's review of the month
        before that is not done is announced, once (one replica at a time)."""
        self._complete_closures()
        policy, now = self.policy.current, self.clock()
        day = policy.rules["library"]["monthly_review"]["remind_on_day"]
        for mall in policy.malls.malls.values():
            local = now.astimezone(mall.calendar.zone)
            if local.day < day:
                continue
            month = library_review.month_before(f"{local:%Y-%m}")
            review = self._review(mall, month)
            changes, out = library_review.reminder(review, self._candidates(mall, month, review), now)
            if out:
                updated = write(self.store.reviews, review, {"$set": changes}, out, now)
                if updated is not None:
                    publish_pending(self.store.reviews, self.dispatch, self.name, now, [updated])

    @leased_timer(SURVEY_INTERVAL, lease="surveys", ttl=timedelta(seconds=SURVEY_INTERVAL))
    def start_survey_rounds(self, lease):
        """R7.12: from the policy's day of the month on, each mall's survey round of the month
        before starts, once (one replica at a time; a round started by hand is not drawn again)."""
        policy, now = self.policy.current, self.clock()
        for mall in policy.malls.malls.values():
            local = now.astimezone(mall.calendar.zone)
            if local.day < policy.rules["surveys"]["day_of_month"]:
                continue
            month = library_review.month_before(f"{local:%Y-%m}")
            if self.store.rounds.find_one({"_id": surveys.round_id(mall.code, month)}, {"_id": 1}) is None:
                self._start_round(mall, month, self.name)

    # --- revisits -----------------------------------------------------------------------------

    @operation(
        Op(
            "GET",
            "/revisits",
            "Revisits still to make, the earliest deadline first.",
            "revisit.read",
            query=WorklistQuery,
            responses={200: RevisitList},
        )
    )
    def worklist(self, query):
        """Revisits still to make at the caller's mall (or the one named), the earliest deadline first."""
        caller = self.access.caller()
        query = WorklistQuery().load(query)
        mall_id = caller.list_mall("revisit.read", query.get("mall_id"))
        return {"items": [self._revisit_out(r) for r in self.store.worklist(mall_id, query["limit"])]}

    @operation(Op("GET", "/revisits/<string:revisit_id>", "One revisit.", "revisit.read", responses={200: RevisitOut}))
    def get_revisit(self, revisit_id):
        caller = self.access.caller().require("revisit.read")  # before the look-up: a 404 would say it exists
        revisit = self.store.get(self.store.revisits, revisit_id, "revisit")
        caller.require("revisit.read", revisit["mall_id"])
        return self._revisit_out(revisit)

    @operation(
        Op(
            "POST",
            "/revisits/<string:revisit_id>/attempts",
            "A call or message by staff: reached (with the answer), no answer, or a wrong number.",
            "revisit.record",
            body=AttemptIn,
            signed=True,
            responses={200: RevisitOut},
            errors=(409,),
        )
    )
    def record_attempt(self, revisit_id, data):
        """A call or message by staff: the answer when reached, else a retry or, after the
        last attempt, unreachable."""
        caller = self.access.caller()
        request = AttemptIn().load(signed(data, caller))
        revisit = self.store.get(self.store.revisits, revisit_id, "revisit")
        caller.require("revisit.record", revisit["mall_id"])
        if request["outcome"] == "reached":
            answer = revisit["answer"]
            if answer and answer["by"] == request["by"] and rules.same_answer(answer, request):
                return self._revisit_out(revisit)  # the same answer sent twice: recorded once
        rule = self._answer if request["outcome"] == "reached" else rules.no_answer
        return self._revisit_out(
            self._change(revisit_id, lambda revisit, policy, now: rule(revisit, request, request["by"], policy, now))
        )

    @operation(
        Op(
            "POST",
            "/answers",
            "The customer's own answer through the signed link: no login, the token is "
            "the proof (forged 403, expired 410, a different second answer 409).",
            body=LinkAnswerIn,
            responses={200: AnswerOut},
            errors=(403, 404, 409, 410),
        )
    )
    def answer_by_link(self, data):
        """The customer's own answer through the link: no login, the token is the proof."""
        return self._answer_out(self._answered_by_link(LinkAnswerIn().load(data)))

    # --- the answer page (answer_page.py): what the link opens -----------------------------------

    @http(
        Op(
            "GET",
            "/answers",
            "The page the answer link opens: 1-5 stars, the reason tags and a comment, "
            "in simplified Chinese (lang=en: English), a plain form without script. A forged link 403, an "
            "expired one 410, one answered already or a revisit that ended 409, each a page.",
            query=AnswerPageQuery,
            responses={status: "text/html" for status in (200, 403, 404, 409, 410, 429, 503)},
        ),
        error_page=answer_page.refusal,
    )
    def show_answer_page(self, request):
        lang, token = answer_page.language(request.args), request.args.get("token", "")
        if surveys.is_survey(self._link_id(token)):
            return answer_page.respond(200, self._survey_form(self._open_survey(token), token, lang))
        return answer_page.respond(200, self._answer_form(self._open_link(token), token, lang))

    @http(
        Op(
            "POST",
            "/answers/form",
            "The answer page's form: records the answer as POST /answers does and "
            "answers a thank-you page; the form again, saying what to fix (422); the refusals of GET /answers.",
            query=PageLanguage,
            form=AnswerFormIn,
            responses={status: "text/html" for status in (200, 400, 403, 404, 409, 410, 413, 422, 429, 503)},
        ),
        error_page=answer_page.refusal,
    )
    def answer_by_form(self, request):
        lang, entered = answer_page.language(request.args), answer_page.form_answer(read_form(request))
        if surveys.is_survey(self._link_id(entered.get("token", ""))):
            return self._survey_answered_by_form(lang, entered)
        try:
            revisit = self._answered_by_link(AnswerFormIn().load(entered))
        except ValidationError as exc:  # the form again, as filled in, while the link takes an answer
            token = entered.get("token", "")
            form = self._answer_form(self._open_link(token), token, lang, entered, exc.messages)
            return answer_page.respond(422, form)
        return answer_page.respond(200, answer_page.thanks(lang, revisit["answer"]["satisfied"]))

    def _answer_form(self, revisit, token, lang, entered=None, problems=None):
        policy = self.policy.current
        mall = getattr(policy.malls.get(revisit["mall_id"]), "name", revisit["mall_id"])  # a mall since removed: its id
        return answer_page.form(
            self.public_base_url,
            token,
            lang,
            mall,
            revisit["complaint_no"],
            policy.rules["reason_tags"],
            entered,
            problems,
        )

    # --- periodic satisfaction surveys (R7.12, surveys.py) ---------------------------------------

    @operation(
        Op(
            "POST",
            "/surveys/rounds",
            "Start a mall's satisfaction survey round of a month's closed cases (R7.12): a sample of their customers, "
            "by channel, each sent a link; it starts by itself on the policy's day of the next month. The same "
            "round again sends what is missing of the same sample (200); a month not over yet 409.",
            "survey.run",
            body=SurveyRoundIn,
            signed=True,
            responses={201: SurveyRoundOut, 200: SurveyRoundOut},
            errors=(409,),
        )
    )
    def start_survey_round(self, data):
        caller = self.access.caller()
        request = SurveyRoundIn().load(signed(data, caller))
        mall = self._review_mall(request["mall_id"])
        caller.require("survey.run", mall.id)
        if self.clock() < library_review.month_span(request["month"], mall.calendar.zone)[1]:
            raise Conflict(f"{request['month']} is not over: its customers are surveyed once it is")
        round_, created = self._start_round(mall, request["month"], request["by"])
        return Created("round", SurveyRoundOut().dump(round_), created)

    @operation(
        Op(
            "GET",
            "/surveys/<string:survey_id>",
            "One satisfaction survey (R7.12).",
            "survey.read",
            responses={200: SurveyOut},
        )
    )
    def get_survey(self, survey_id):
        caller = self.access.caller().require("survey.read")  # before the look-up: a 404 would say it exists
        survey = self.store.get(self.store.surveys, survey_id, "survey")
        caller.require("survey.read", survey["mall_id"])
        link = None
        if survey["status"] == "sent" and self.clock() <= survey["link_expires_at"]:
            token = rules.sign_link(self.answer_link_secret, survey["_id"], survey["link_expires_at"])
            link = answer_page.answer_link(self.public_base_url, token)
        return SurveyOut().dump({**survey, "answer_link": link})

    def _start_round(self, mall, month, by):
        """The round of `month` at `mall`, drawn once (its sample kept), and every survey of it
        not sent yet sent: (round, whether it was drawn now)."""
        policy, now = self.policy.current, self.clock()
        rule, number = policy.rules["surveys"], surveys.round_id(mall.code, month)
        created = False
        if self.store.rounds.find_one({"_id": number}, {"_id": 1}) is None:
            closures = self.store.closed_in(mall.id, *library_review.month_span(month, mall.calendar.zone))
            kept = self.store.complaints_of([c["_id"] for c in closures])
            drawn = surveys.sample(number, closures, kept, rule)
            created = self.store.insert_new(
                self.store.rounds, surveys.new_round(number, mall.id, month, drawn, by, now)
            )
        round_ = self.store.get(self.store.rounds, number, "survey round")
        made = [
            {**doc, **new_outbox(event, now)} for doc, event in surveys.new_surveys(round_, rule, mall.calendar, now)
        ]
        publish_pending(
            self.store.surveys, self.dispatch, self.name, now, self.store.insert_new_many(self.store.surveys, made)
        )
        return round_, created

    def _open_survey(self, token):
        """The survey of a link that still takes an answer: expired 410 (SurveyEnded), answered 409."""
        survey_id = self._link_id(token)
        survey = self.store.get(self.store.surveys, survey_id, "survey")
        if survey["status"] == "answered":
            raise rules.AlreadyAnswered(f"survey {survey_id} has been answered already")
        return survey

    def _survey_form(self, survey, token, lang, entered=None, problems=None):
        mall = getattr(self.policy.current.malls.get(survey["mall_id"]), "name", survey["mall_id"])
        return answer_page.survey_form(self.public_base_url, token, lang, mall, entered, problems)

    def _survey_answered_by_form(self, lang, entered):
        """The survey's answer from its page: the same answer sent again is the one recorded,
        another after it 409; the form again, saying what to fix (422)."""
        token = entered.get("token", "")
        try:
            request = SurveyFormIn().load(entered)
        except ValidationError as exc:
            form = self._survey_form(self._open_survey(token), token, lang, entered, exc.messages)
            return answer_page.respond(422, form)
        survey_id = self._link_id(request["token"])
        satisfied_from = self.policy.current.rules["satisfied_from"]

        def answered(survey, now):
            changes, out = surveys.answer(survey, request, satisfied_from, now)
            return {"$set": changes}, out

        if not surveys.same_answer(self.store.get(self.store.surveys, survey_id, "survey"), request):
            change(
                self.store.surveys,
                survey_id,
                answered,
                self.dispatch,
                self.name,
                self.clock,
                "survey",
                f"{survey_id} kept changing; try again",
            )
        return answer_page.respond(200, answer_page.survey_thanks(lang))

    # --- the case library (R4.4) ----------------------------------------------------------------

    @operation(
        Op(
            "GET",
            "/library",
            "Search the case library (R4.4).",
            "library.read",
            query=LibraryQuery,
            responses={200: LibraryList},
        )
    )
    def search_library(self, query):
        """By category, mall, merchant, risk and a keyword in the problem, outcome or lessons.
        The library is the chain's (scrubbed of personal data): every mall learns from it."""
        self.access.caller().require("library.read")
        query = LibraryQuery().load(query)
        items = self.store.search(rules.search_filter(query), query["limit"])
        return {"items": LibraryOut(many=True, exclude=("process",)).dump(items)}

    @operation(
        Op("GET", "/library/<string:complaint_no>", "One library entry.", "library.read", responses={200: LibraryOut})
    )
    def get_library_entry(self, complaint_no):
        self.access.caller().require("library.read")
        return self._library_entry(complaint_no)

    @operation(
        Op(
            "POST",
            "/library",
            "Put a resolved case into the library with its lessons.",
            "library.write",
            body=ArchiveIn,
            signed=True,
            responses={201: LibraryOut},
            errors=(404, 409, 503),
        )
    )
    def archive(self, data):
        """A handler puts a typical case into the library with the lessons learnt."""
        caller = self.access.caller()
        request = ArchiveIn().load(signed(data, caller))
        try:
            case = ask(self.access, self.resolution.get_case, request["complaint_no"])
        except RemoteError as exc:
            if exc.exc_type == "NotFound":  # resolution has no such case: the caller's mistake, not ours
                raise NotFound(f"no case {request['complaint_no']}") from exc
            raise
        caller.require("library.write", case["mall_id"])
        if case["state"] not in ("resolved", "closed"):
            raise Conflict(f"a case that is {case['state']} is archived once it is resolved")
        return LibraryOut().dump(self._archive(case, request["lessons"], request["by"], automatic=False))

    @operation(
        Op(
            "POST",
            "/library/<string:complaint_no>/lessons",
            "The lessons of an entry archived by itself.",
            "library.write",
            body=LessonsIn,
            signed=True,
            responses={200: LibraryOut},
        )
    )
    def add_lessons(self, complaint_no, data):
        """The lessons of an entry archived by itself (high risk)."""
        caller = self.access.caller()
        request = LessonsIn().load(signed(data, caller))
        entry = self.store.get(self.store.library, complaint_no, "library entry")
        caller.require("library.write", entry["mall_id"])
        self.store.library.update_one(
            {"_id": complaint_no},
            {
                "$set": {
                    "lessons": rules.scrub(request["lessons"]),
                    "lessons_pending": False,
                    "lessons_by": request["by"],
                }
            },
        )
        return self._library_entry(complaint_no)

    # --- the library's monthly review (R7.14) ----------------------------------------------------

    @operation(
        Op(
            "GET",
            "/library/reviews/<string:month>",
            "A mall's monthly review of the case library: the month's candidate cases and the decisions (R7.14).",
            "library.write",
            query=ReviewQuery,
            responses={200: ReviewOut},
        )
    )
    def get_library_review(self, month, query):
        caller = self.access.caller()
        month = ReviewMonth().load({"month": month})["month"]
        mall = self._review_mall(ReviewQuery().load(query)["mall_id"])
        caller.require("library.write", mall.id)
        return self._review_out(mall, month)

    @operation(
        Op(
            "POST",
            "/library/reviews/<string:month>/decisions",
            "Add a candidate to the library with its lessons, or pass it over with a reason (R7.14).",
            "library.write",
            body=ReviewDecisionIn,
            signed=True,
            responses={200: ReviewOut},
            errors=(409, 503),
        )
    )
    def decide_library_candidate(self, month, data):
        caller = self.access.caller()
        month = ReviewMonth().load({"month": month})["month"]
        request = ReviewDecisionIn().load(signed(data, caller))
        mall = self._review_mall(request["mall_id"])
        caller.require("library.write", mall.id)
        number, archived = request["complaint_no"], False
        while True:  # a compare-and-set: a review written meanwhile is read and decided on again
            review, now = self._review(mall, month), self.clock()
            changes = library_review.decide(
                review,
                self._candidates(mall, month, review),
                number,
                request["decision"],
                request.get("reason"),
                request["by"],
                now,
            )
            if request["decision"] == "add" and not archived:
                case = ask(self.access, self.resolution.get_case, number)
                self._archive(case, request["lessons"], request["by"], automatic=False)
                archived = True
            if write(self.store.reviews, review, {"$set": changes}, [], now) is not None:
                return self._review_out(mall, month)

    @operation(
        Op(
            "POST",
            "/library/reviews/<string:month>/done",
            "Finish a month's review once every candidate is decided (R7.14).",
            "library.write",
            body=ReviewDoneIn,
            signed=True,
            responses={200: ReviewOut},
            errors=(409,),
        )
    )
    def finish_library_review(self, month, data):
        caller = self.access.caller()
        month = ReviewMonth().load({"month": month})["month"]
        request = ReviewDoneIn().load(signed(data, caller))
        mall = self._review_mall(request["mall_id"])
        caller.require("library.write", mall.id)
        while True:  # a compare-and-set, as above
            review, now = self._review(mall, month), self.clock()
            ended = now >= library_review.month_span(month, mall.calendar.zone)[1]
            changes, event = library_review.done(
                review, self._candidates(mall, month, review), request["by"], ended, now
            )
            updated = write(self.store.reviews, review, {"$set": changes}, [event], now)
            if updated is not None:
                publish_pending(self.store.reviews, self.dispatch, self.name, now, [updated])
                return self._review_out(mall, month)

    def _complete_closures(self):
        """Closures kept before the review existed (2026-12-06) know only when: the case tells
        the rest, so that their month's review lists them; one not answered now is asked next tick."""
        for closure in self.store.closures_to_complete(CLOSURES_A_TICK):
            try:
                self.store.keep_closed_case(ask(self.access, self.resolution.get_case, closure["_id"]))
            except Exception as exc:  # resolution away, or the case gone: tried again next tick
                log.info("closure %s not completed: %r", closure["_id"], exc)

    def _review_mall(self, mall_id):
        mall = self.policy.current.malls.get(mall_id)
        if mall is None:
            raise ValidationError({"mall_id": [f"Unknown mall {mall_id!r}."]})
        return mall

    def _review(self, mall, month):
        """The mall's review of `month`, started (stored) by whoever comes first."""
        number = library_review.review_id(mall.code, month)
        self.store.insert_new(self.store.reviews, library_review.new_review(number, mall.id, month))
        return self.store.get(self.store.reviews, number, "library review")

    def _candidates(self, mall, month, review):
        closures = self.store.closed_in(mall.id, *library_review.month_span(month, mall.calendar.zone))
        numbers = [c["_id"] for c in closures]
        return library_review.candidates(
            closures,
            self.store.dissatisfied(numbers),
            self.store.archived(numbers),
            review,
            self.policy.current.rules["library"]["monthly_review"],
        )

    def _review_out(self, mall, month):
        number = library_review.review_id(mall.code, month)
        review = self.store.reviews.find_one({"_id": number}) or library_review.new_review(number, mall.id, month)
        found = self._candidates(mall, month, review)
        return ReviewOut().dump(
            {
                **review,
                "review_no": review["_id"],
                "candidates": found,
                "undecided": sum(1 for c in found if not c["decision"]),
            }
        )

    def _library_entry(self, complaint_no):
        return LibraryOut().dump(self.store.get(self.store.library, complaint_no, "library entry"))

    # --- helpers ------------------------------------------------------------------------------

    def _change(self, revisit_id, decide):
        """Read, decide, compare-and-set (unit_of_work.change); the events leave through the
        revisit's outbox."""

        def apply(revisit, now):
            changes, out = decide(revisit, self.policy.current, now)
            return {"$set": changes}, out

        return change(
            self.store.revisits,
            revisit_id,
            apply,
            self.dispatch,
            self.name,
            self.clock,
            "revisit",
            f"{revisit_id} kept changing; try again",
        )

    def _answer(self, revisit, request, by, policy, now):
        self._answerable(revisit)
        return rules.answer(revisit, request, by, policy, now)

    def _answerable(self, revisit):
        """rules.answerable, and refused once the case of an unreachable customer closed
        without their answer."""
        rules.answerable(revisit)
        if revisit["status"] == "unreachable" and self.store.closed_since(
            revisit["complaint_no"], revisit["resolved_at"]
        ):
            raise Conflict(f"revisit {revisit['_id']} is unreachable and its case has been closed since")

    def _link_id(self, token):
        """The revisit or survey an answer link is for: a forged link is refused (403), an
        expired one is gone (410; a survey's says no call follows)."""
        try:
            return rules.read_link(self.answer_link_secret, token, self.clock())
        except rules.LinkRefused as exc:
            raise Forbidden(str(exc)) from exc
        except rules.LinkExpired as exc:
            if surveys.is_survey(exc.linked):
                raise answer_page.SurveyEnded(f"survey {exc.linked}: its link has expired") from exc
            raise Gone(str(exc)) from exc

    def _linked_revisit(self, token):
        """The revisit an answer link is for (403 forged, 410 expired, 404 a survey's)."""
        return self.store.get(self.store.revisits, self._link_id(token), "revisit")

    def _open_link(self, token):
        """The revisit of a link that still takes an answer (else 403, 410, 409 as below)."""
        revisit = self._linked_revisit(token)
        self._answerable(revisit)
        return revisit

    def _answered_by_link(self, request):
        """The customer's answer through the link (the JSON API's and the page's form), the
        revisit as answered: the same answer sent again is the one recorded (a customer
        pressing send twice), a different one after it is refused (409)."""
        revisit = self._linked_revisit(request["token"])
        answer = revisit["answer"]
        if revisit["status"] == "answered" and answer["by"] == "customer" and rules.same_answer(answer, request):
            return revisit
        return self._change(
            revisit["_id"],
            lambda revisit, policy, now: self._answer(revisit, {**request, "via": "link"}, "customer", policy, now),
        )

    def _complaint_from_intake(self, number):
        """A complaint registered before feedback's queue existed (or still on its way):
        ask intake for it; retried later when intake cannot answer either."""
        try:
            record = ask(self.access, self.intake.get_complaint, number)
        except Exception as exc:  # not at intake either, or intake did not answer: retried
            eventlet.sleep(NOT_SEEN_PAUSE)
            raise ComplaintNotSeenYet(f"{number}: not seen, and intake did not give it: {exc!r}") from exc
        # as complaint_registered would have carried it: masked contact, scrubbed text
        return self.store.keep_complaint(
            number,
            record["mall_id"],
            record["channel"],
            record["customer"]["contact_masked"],
            scrub(record["description"]),
            scrub(record["demands"]),
            record["location"],
        )

    def _cancel_open_revisits(self, event, reason):
        now = self.clock()
        for revisit in self.store.open_revisits(event["complaint_no"]):
            changes, out = rules.cancelled(revisit, reason, event["occurred_at"])
            updated = write(self.store.revisits, revisit, {"$set": changes}, out, now)
            if updated is not None:
                publish_pending(self.store.revisits, self.dispatch, self.name, now, [updated])

    def _archive(self, case, lessons, by, automatic):
        complaint = self.store.complaint(case["complaint_no"]) or {}
        now = self.clock()
        entry, archived = rules.library_entry(case, complaint, lessons, by, automatic, now)
        entry.update(new_outbox(archived, now))
        if self.store.insert_new(self.store.library, entry):
            publish_pending(self.store.library, self.dispatch, self.name, now, [entry])
            return entry
        if lessons:
            raise Conflict(f"{case['complaint_no']} is in the library already; add lessons to its entry")
        return self.store.get(self.store.library, case["complaint_no"], "library entry")

    def _revisit_out(self, revisit):
        link = None
        if revisit.get("link_expires_at") and revisit["status"] in rules.OPEN:
            link = answer_page.answer_link(
                self.public_base_url,
                rules.sign_link(self.answer_link_secret, revisit["_id"], revisit["link_expires_at"]),
            )
        return RevisitOut().dump(
            {
                **revisit,
                "answer_link": link,
                "next_attempt_at": rules.next_attempt(revisit),
                "max_attempts": self.policy.current.revisit(revisit["mall_id"])["max_attempts"],
            }
        )

    def _answer_out(self, revisit):
        answer = revisit["answer"]
        return {
            "revisit_id": revisit["_id"],
            "complaint_no": revisit["complaint_no"],
            "score": answer["score"],
            "satisfied": answer["satisfied"],
            "message": answer_page.thanks_message("zh", answer["satisfied"]),
        }
