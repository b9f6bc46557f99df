//! The reputation book's unit tests: bans, recovery, wrong peer ids,
//! operator bans and the bounds, on paused time where time matters.

use super::*;

fn book() -> Reputation {
    Reputation::new(Config::default(), Metrics::new("test"))
}

#[tokio::test(start_paused = true)]
async fn four_malformed_frames_ban_a_peer_and_the_ban_runs_out() {
    let reputation = book();
    let (bad, good) = (PeerId::random(), PeerId::random());
    let mut events = reputation.events();
    for _ in 0..3 {
        assert!(!reputation.report(bad, Violation::MalformedFrame));
    }
    reputation.report(good, Violation::MalformedFrame);
    assert!(reputation.report(bad, Violation::MalformedFrame));
    assert!(reputation.is_banned(&bad));
    assert!(!reputation.is_banned(&good));
    assert!(matches!(
        events.try_recv(),
        Ok(Event::Banned { peer, reason: BanReason::Misbehaved(Violation::MalformedFrame), .. }) if peer == bad
    ));
    tokio::time::advance(Config::DEFAULT_BAN_DURATION).await;
    assert!(!reputation.is_banned(&bad));
}

#[tokio::test(start_paused = true)]
async fn a_score_recovers_with_time() {
    let reputation = book();
    let peer = PeerId::random();
    for _ in 0..3 {
        reputation.report(peer, Violation::MalformedFrame);
    }
    assert_eq!(reputation.score(&peer), -75.0);
    tokio::time::advance(Config::DEFAULT_HALF_LIFE * 2).await;
    assert!((reputation.score(&peer) + 18.75).abs() < 0.01);
    // Two more faults now do not ban (three fresh ones would not
    // either): the old ones have faded.
    for _ in 0..2 {
        assert!(!reputation.report(peer, Violation::MalformedFrame));
    }
}

#[test]
fn a_wrong_peer_id_counts_against_who_told_the_address() {
    let reputation = book();
    let (sought, teller) = (PeerId::random(), PeerId::random());
    let address: Multiaddr = "/ip4/10.201.0.9/tcp/4001".parse().unwrap();
    reputation.told(sought, &address, teller);
    reputation.wrong_peer_id(sought, &address.clone().with_p2p(sought).unwrap());
    assert!(reputation.score(&teller) < 0.0);
    // Counted once: the entry is used up.
    let once = reputation.score(&teller);
    reputation.wrong_peer_id(sought, &address);
    assert!((reputation.score(&teller) - once).abs() < 0.01);
    for _ in 0..MAX_TOLD + 10 {
        reputation.told(PeerId::random(), &address, teller);
    }
    assert_eq!(reputation.state().told.len(), MAX_TOLD);
}

#[test]
fn an_operator_ban_is_lifted_by_unban() {
    let reputation = book();
    let peer = PeerId::random();
    let mut events = reputation.events();
    reputation.ban_for(peer, Duration::from_secs(60), BanReason::Operator);
    assert!(reputation.is_banned(&peer));
    assert!(reputation.unban(&peer));
    assert!(!reputation.is_banned(&peer));
    assert!(!reputation.unban(&peer));
    assert!(matches!(events.try_recv(), Ok(Event::Banned { .. })));
    assert_eq!(events.try_recv(), Ok(Event::Unbanned { peer }));
}

#[test]
fn scores_and_bans_stay_bounded() {
    let reputation = book();
    for _ in 0..MAX_TRACKED + 10 {
        reputation.report(PeerId::random(), Violation::RateLimitExceeded);
    }
    assert_eq!(reputation.state().scores.len(), MAX_TRACKED);
    for _ in 0..MAX_BANS + 10 {
        reputation.ban_for(
            PeerId::random(),
            Duration::from_secs(60),
            BanReason::Operator,
        );
    }
    assert_eq!(reputation.state().bans.len(), MAX_BANS);
}
