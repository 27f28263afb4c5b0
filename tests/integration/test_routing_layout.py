"""Contacts keep their main index key on their own item; those stored by the previous version still route.

This version puts a contact's main index key on the contact's own item (``WAITING#<first queue>`` while queued,
``WORK#<agent>`` while offered or assigned) instead of writing a copy beside it. The previous version kept the
contact's item in no index and wrote a full copy per index (``WAIT#``, ``NEED#``, ``AGE#`` per queue while
queued; ``OFFER`` and ``WORK`` while offered; ``WORK`` while assigned). Items it left in the table at a deploy
are written here exactly as it wrote them, and must be offered, accepted and closed with no copy left behind.
"""

from __future__ import annotations

from typing import Any

from chalicelib import clock
from chalicelib.routing import engine
from chalicelib.routing.events import AgentFreed
from chalicelib.routing.model import Agent, Contact, ContactState, Presence
from chalicelib.store import aws
from chalicelib.store import routing as routing_store
from chalicelib.store.dynamo import to_item
from chalicelib.store.routing import waiting_count_actions
from tests.support import all_items

TABLE = "switchboard-routing"


def _previous_version_items(contact: Contact) -> list[dict[str, Any]]:
    """The items the previous version stored for ``contact``: its own item (in no index) and its copies."""
    pk = f"CONTACT#{contact.contact_id}"
    values = {
        "pk": pk,
        "sk": "CONTACT",
        **{name: getattr(contact, name) for name in Contact.__dataclass_fields__},
        "state": contact.state.value,
        "queues": list(contact.queues),
        "declined_by": list(contact.declined_by),
        "escalation": [],
    }
    items = [values]
    if contact.state is ContactState.QUEUED:
        order = f"{9 - contact.priority}#{contact.sla_deadline}#{contact.enqueued_at}#{contact.contact_id}"
        for queue in contact.queues:
            items.append({**values, "sk": f"WAIT#{queue}", "gsi1pk": f"WAITING#{queue}", "gsi1sk": order})
            items.append({**values, "sk": f"NEED#{queue}", "gsi1pk": f"NEEDS#{queue}#-", "gsi1sk": order})
            items.append(
                {
                    "pk": pk,
                    "sk": f"AGE#{queue}",
                    "gsi1pk": f"WAITSINCE#{queue}",
                    "gsi1sk": f"{contact.enqueued_at}#{contact.contact_id}",
                    "enqueued_at": contact.enqueued_at,
                }
            )
    if contact.state is ContactState.OFFERED:
        items.append(
            {
                **values,
                "sk": "OFFER",
                "gsi1pk": "OFFERED",
                "gsi1sk": f"{contact.offer_expires_at}#{contact.contact_id}",
            }
        )
    if contact.state in (ContactState.OFFERED, ContactState.ASSIGNED):
        agent = contact.offered_to or contact.assigned_to
        items.append({**values, "sk": "WORK", "gsi1pk": f"WORK#{agent}", "gsi1sk": contact.enqueued_at})
    return items


def _store_as_previous_version(contact: Contact) -> None:
    actions = [
        {"Put": {"TableName": TABLE, "Item": to_item({k: v for k, v in item.items() if v is not None})}}
        for item in _previous_version_items(contact)
    ]
    aws.client("dynamodb").transact_write_items(TransactItems=[*actions, *waiting_count_actions([(None, contact)])])


def _items_of(contact_id: str) -> set[str]:
    """The sort keys stored under the contact, records and decisions aside."""
    return {
        i["sk"]
        for i in all_items(TABLE)
        if i["pk"] == f"CONTACT#{contact_id}" and not i["sk"].startswith(("RECORD#", "RECORDLOG#", "DECISION#"))
    }


def _ada() -> Agent:
    agent = Agent("ada", "Ada", Presence.AVAILABLE, {}, idle_since=clock.now_iso())
    routing_store.create_agent(agent)
    return agent


def test_a_contact_queued_by_the_previous_version_is_offered_accepted_and_closed_without_leftovers(client):
    now = clock.now_iso()
    waiting = Contact("conv_old_1", "cus_old_1", "webchat", now, sla_deadline=clock.plus_seconds(now, 600))
    _store_as_previous_version(waiting)
    assert routing_store.waiting_summary("default")[0] == 1
    _ada()

    outcome = engine.handle(AgentFreed("ada", cause="test"))

    assert [o.contact.contact_id for o in outcome.offers] == ["conv_old_1"]
    assert _items_of("conv_old_1") == {"CONTACT"}, "the previous version's waiting copies are gone"
    assert routing_store.waiting_contacts("default") == []
    assert routing_store.waiting_summary("default") == (0, None)
    assert [c.contact_id for c in routing_store.work_of("ada")] == ["conv_old_1"]

    router = engine.router()
    router.accept("ada", "conv_old_1", outcome.offers[0].offer_id)
    assert _items_of("conv_old_1") == {"CONTACT"}
    assert [(c.contact_id, c.state) for c in routing_store.work_of("ada")] == [("conv_old_1", ContactState.ASSIGNED)]

    router.close("ada", "conv_old_1", "resolved")
    assert _items_of("conv_old_1") == {"CONTACT"}
    assert routing_store.work_of("ada") == []
    assert routing_store.get_agent("ada").used == 0


def test_a_contact_offered_by_the_previous_version_is_listed_once_and_leaves_no_work_copy(client):
    now = clock.now_iso()
    agent = _ada()
    offered = Contact("conv_old_2", "cus_old_2", "webchat", now).offered(
        "ada", "off_old_2", now, clock.plus_seconds(now, 30), 1
    )
    _store_as_previous_version(offered)
    routing_store.save_agent(agent, agent.reserved("webchat", 1))
    assert [c.contact_id for c in routing_store.work_of("ada")] == ["conv_old_2"]

    router = engine.router()
    router.accept("ada", "conv_old_2", "off_old_2")

    assert _items_of("conv_old_2") == {"CONTACT"}, "the previous version's OFFER and WORK copies are gone"
    assert [(c.contact_id, c.state) for c in routing_store.work_of("ada")] == [("conv_old_2", ContactState.ASSIGNED)]
    router.close("ada", "conv_old_2", "resolved")
    assert routing_store.work_of("ada") == []
    assert routing_store.expired_offers(clock.plus_seconds(now, 3600)) == []


def test_a_contact_assigned_by_the_previous_version_is_closed_without_a_work_copy_left(client):
    now = clock.now_iso()
    agent = _ada()
    assigned = (
        Contact("conv_old_3", "cus_old_3", "webchat", now)
        .offered("ada", "off_old_3", now, clock.plus_seconds(now, 30), 1)
        .assigned(now)
    )
    _store_as_previous_version(assigned)
    routing_store.save_agent(agent, agent.reserved("webchat", 1))

    engine.router().close("ada", "conv_old_3", "resolved")

    assert _items_of("conv_old_3") == {"CONTACT"}
    assert routing_store.work_of("ada") == []


def test_this_version_keeps_a_contacts_main_index_key_on_its_own_item(client):
    now = clock.now_iso()
    _ada()
    queued = Contact("conv_new", "cus_new", "webchat", now)
    routing_store.create_contact(None, queued)
    assert _items_of("conv_new") == {"CONTACT", "NEED#default", "AGE#default"}
    assert [c.contact_id for c in routing_store.waiting_contacts("default")] == ["conv_new"]

    [offer] = engine.handle(AgentFreed("ada", cause="test")).offers
    assert _items_of("conv_new") == {"CONTACT"}, "an open offer is found by the contact's own item"
    assert [c.contact_id for c in routing_store.work_of("ada")] == ["conv_new"]
    assert [c.contact_id for c in routing_store.expired_offers(clock.plus_seconds(now, 3600))] == ["conv_new"]
    assert offer.contact.contact_id == "conv_new"


def _store_as_layout_2(contact: Contact) -> None:
    """What the version before this one stored for an offered contact: its own item under ``WORK#<agent>`` and
    an ``OFFER`` copy under ``OFFERED`` by the offer's expiry."""
    values = {
        "pk": f"CONTACT#{contact.contact_id}",
        "sk": "CONTACT",
        **{name: getattr(contact, name) for name in Contact.__dataclass_fields__},
        "state": contact.state.value,
        "queues": list(contact.queues),
        "declined_by": list(contact.declined_by),
        "escalation": [],
        "layout": 2,
    }
    items = [
        {**values, "gsi1pk": f"WORK#{contact.offered_to}", "gsi1sk": contact.enqueued_at},
        {
            **values,
            "sk": "OFFER",
            "gsi1pk": "OFFERED",
            "gsi1sk": f"{contact.offer_expires_at}#{contact.contact_id}",
        },
    ]
    aws.client("dynamodb").transact_write_items(
        TransactItems=[
            {"Put": {"TableName": TABLE, "Item": to_item({k: v for k, v in i.items() if v is not None})}} for i in items
        ]
    )


def test_a_contact_offered_with_an_offer_copy_is_listed_once_expired_once_and_leaves_no_copy(client):
    now = clock.now_iso()
    agent = _ada()
    expires = clock.plus_seconds(now, 30)
    for n in (4, 5):
        offered = Contact(f"conv_old_{n}", f"cus_old_{n}", "webchat", now).offered(
            "ada", f"off_old_{n}", now, expires, 1
        )
        _store_as_layout_2(offered)
    routing_store.save_agent(agent, agent.reserved("webchat", 1).reserved("webchat", 1))
    assert sorted(c.contact_id for c in routing_store.work_of("ada")) == ["conv_old_4", "conv_old_5"]
    later = clock.plus_seconds(now, 60)
    assert [c.contact_id for c in routing_store.expired_offers(later)] == ["conv_old_4", "conv_old_5"]

    router = engine.router()
    router.accept("ada", "conv_old_4", "off_old_4")
    assert _items_of("conv_old_4") == {"CONTACT"}, "the OFFER copy is gone with the accept"
    assert router.expire_offer("conv_old_5", "off_old_5", later)
    assert _items_of("conv_old_5") == {"CONTACT", "NEED#default", "AGE#default"}, "back in the queue, no OFFER"

    assert routing_store.expired_offers(later) == []
    assert [(c.contact_id, c.state) for c in routing_store.work_of("ada")] == [("conv_old_4", ContactState.ASSIGNED)]
