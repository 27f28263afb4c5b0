"""Scenario files: every standard one loads, and a bad one is refused with the field named."""

from __future__ import annotations

import pytest

from chalicelib.sim.scenario import ScenarioError, load_scenario, parse_scenario, scenario_path, standard_scenarios

GOOD = """
start: 2026-04-07T00:00:00Z
contacts: 100
arrivals:
  - {channel: webchat, per_hour: 60}
handle_time:
  webchat: {distribution: exponential, mean: 3m}
agents:
  - {name: agent, count: 2}
"""


def test_every_standard_scenario_loads_and_is_described_in_the_readme() -> None:
    names = standard_scenarios()
    assert {"single-queue", "multi-skill-085", "multi-skill-095", "voice-priority-085", "mixed-day"} <= set(names)
    readme = (scenario_path("single-queue").parent / "README.md").read_text()
    for name in names:
        scenario, _ = load_scenario(scenario_path(name))
        assert scenario.name == name
        assert f"{name}.yaml" in readme or f"`{name}" in readme


def test_a_good_scenario_reads_durations_in_units() -> None:
    scenario = parse_scenario(GOOD)
    assert scenario.handle_time["webchat"].mean == 180.0
    assert scenario.sweep_every == 60.0  # as production's sweeper


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (("count: 2", "count: 0"), "agents.0.count: Input should be greater than or equal to 1"),
        (("channel: webchat", "channel: pigeon"), "arrivals.0.channel: unknown channel"),
        (("mean: 3m", "mean: soon"), "handle_time.webchat.mean: a duration is a number of seconds"),
        (("contacts: 100", "contacts: 100\nduration: 1h"), "(top level): give exactly one of duration and contacts"),
        (("per_hour: 60", "per_hour: 60, colour: red"), "arrivals.0.colour: unknown key"),
        (("start: 2026-04-07T00:00:00Z", "start: 2026-04-07T00:00:00"), "start: the start needs a time zone"),
        (("distribution: exponential", "distribution: gaussian"), "handle_time.webchat.distribution: Input should"),
    ],
)
def test_a_bad_field_is_named(change: tuple[str, str], expected: str) -> None:
    old, new = change
    with pytest.raises(ScenarioError) as caught:
        parse_scenario(GOOD.replace(old, new), "lab.yaml")
    assert f"lab.yaml: {expected}" in str(caught.value)


def test_a_stream_needs_a_handle_time_for_its_channel() -> None:
    text = GOOD.replace("arrivals:\n", "arrivals:\n  - {channel: voice, per_hour: 5}\n")
    with pytest.raises(ScenarioError, match="handle_time has no distribution for channel voice"):
        parse_scenario(text)


def test_not_a_mapping_is_refused() -> None:
    with pytest.raises(ScenarioError, match="a scenario is a mapping"):
        parse_scenario("- just a list")


CSV_SCENARIO = """
name: from-csv
start: 2026-04-07T09:00:00Z
duration: 1h
arrivals_csv: arrivals.csv
always_open: true
handle_time:
  webchat: {distribution: fixed, mean: 60s}
agents:
  - {name: agent, count: 1, skills: {billing: 3}, queues: [default, billing], capacity: 20}
"""


def test_arrivals_can_come_from_a_csv(tmp_path) -> None:
    from chalicelib.sim.simulator import simulate

    (tmp_path / "lab.yaml").write_text(CSV_SCENARIO)
    (tmp_path / "arrivals.csv").write_text(
        "at,channel,text,language,tier,customer_id,handle_seconds,patience_seconds\n"
        "2026-04-07T09:00:10Z,webchat,Where is my order?,,,ann,,\n"
        "2026-04-07T09:00:20Z,webchat,I want a refund,,,bob,300,\n"
        "2026-04-07T09:00:30Z,webchat,Hola,es,,cat,,5\n"
        "2026-04-07T11:00:00Z,webchat,after the period,,,dan,,\n"
    )
    scenario, folder = load_scenario(tmp_path / "lab.yaml")
    result = simulate(scenario, folder)

    ann, bob, cat = result.records  # the fourth arrives after the hour
    assert (ann.customer_id, ann.queue, ann.accepted) == ("ann", "default", 10.0)
    assert (bob.queue, bob.arrival.handle) == ("billing", 300.0)  # the rules saw the text
    assert cat.abandoned == 35.0 and cat.accepted is None  # one agent, busy: Cat left after 5 s


def test_a_bad_csv_row_is_named_by_line(tmp_path) -> None:
    from chalicelib.sim.simulator import simulate

    (tmp_path / "lab.yaml").write_text(CSV_SCENARIO)
    (tmp_path / "arrivals.csv").write_text("at,channel,text\n2026-04-07T09:00:10Z,webchat,hi\nsoon,webchat,hi\n")
    scenario, folder = load_scenario(tmp_path / "lab.yaml")
    with pytest.raises(ScenarioError, match=r"arrivals.csv line 3: at: "):
        simulate(scenario, folder)
