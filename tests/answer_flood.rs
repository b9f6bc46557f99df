//! A hostile peer-exchange answer cannot make a node open many sockets.
//! Its own test binary: it counts the process's open descriptors.

mod common;

fn open_descriptors() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

/// A liar answering with `addresses` addresses, a node bootstrapped to
/// it, and a call to an unknown peer: what the call says, how many
/// addresses it kept, and the most descriptors open during the call above
/// those open before it.
async fn lied_to(addresses: u16) -> (subnet::CallError, usize, usize) {
    use std::time::Duration;
    let bare = || {
        subnet::Node::builder()
            .listen("/ip4/127.0.0.1/tcp/0".parse().unwrap())
            .kademlia(false)
    };
    let liar = bare().peer_exchange(false).build().await.unwrap();
    liar.register(common::FixedAnswer::closed_ports(addresses))
        .await
        .unwrap();
    let victim = bare()
        .bootstrap(liar.addresses()[0].clone())
        .build()
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !victim
        .connected_peers()
        .await
        .unwrap()
        .contains(&liar.peer_id())
    {
        assert!(tokio::time::Instant::now() < deadline, "connected");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let before = open_descriptors();
    let wanted = subnet::PeerId::random();
    let call = tokio::spawn({
        let victim = victim.clone();
        async move {
            victim
                .client::<subnet::task::TaskProtocol>()
                .call(wanted, subnet::task::TaskRequest::default())
                .await
        }
    });
    let mut peak = before;
    while !call.is_finished() {
        peak = peak.max(open_descriptors());
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let error = call.await.unwrap().unwrap_err();
    let kept = victim.address_book().addresses(&wanted).len();
    println!(
        "{addresses}-address answer: {error}; {kept} addresses kept; descriptors {before} before, {peak} at most during the call"
    );
    victim.shutdown().await;
    liar.shutdown().await;
    (error, kept, peak.saturating_sub(before))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_of_5000_addresses_dials_at_most_16_and_descriptors_stay_bounded() {
    let cap = subnet::peer_exchange::MAX_ANSWER_ADDRESSES;
    // 5,000 addresses do not fit in a peer-exchange frame (16 KiB): the
    // answer is refused whole and nothing is dialed.
    let (error, kept, opened) = lied_to(5_000).await;
    assert!(
        matches!(error, subnet::CallError::NoAddress { .. }),
        "{error}"
    );
    assert_eq!(kept, 0);
    assert!(opened <= cap, "{opened} descriptors opened");
    // 1,200 fit: 16 are taken and dialed (each refused), no more.
    let (error, kept, opened) = lied_to(1_200).await;
    assert!(kept <= cap);
    assert!(opened <= cap, "{opened} descriptors opened");
    match &error {
        subnet::CallError::DialFailed { source, .. } => match &**source {
            libp2p::swarm::DialError::Transport(tried) => {
                assert!(
                    !tried.is_empty() && tried.len() <= cap,
                    "{} tried",
                    tried.len()
                )
            }
            other => panic!("{other}"),
        },
        other => panic!("{other}"),
    }
}
