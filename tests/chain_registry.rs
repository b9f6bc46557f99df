//! The registry on the Hypertensor chain: golden SCALE bytes made by Python
//! `scalecodec` from the subnet template's own type registry
//! (tests/fixtures/chain/generate.py), and a mock chain node (jsonrpsee's
//! server on 127.0.0.1, HTTP and WebSocket on one port) in front of real
//! nodes.

#![cfg(feature = "chain")]

mod common;

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use common::{eventually, task};
use jsonrpsee::{
    server::{RpcModule, Server, ServerHandle},
    types::ErrorObjectOwned,
};
use subnet::{
    Multiaddr, Node, NodeBuilder, PeerId,
    address_book::Source,
    registry::{
        Registry,
        hypertensor::{
            Bootnodes, ChainError, HypertensorConfig, HypertensorRegistry, Layout, NodeClass,
            NodeInfo, PeerInfo, Role, detect, layout::Classification, snapshot,
        },
    },
    task::TaskProtocol,
};

const WAIT: Duration = Duration::from_secs(20);

/// The fixture peer ids (generate.py prints them): peer `n`'s Ed25519 key
/// bytes are all `n`.
const PEER_1: &str = "12D3KooW9tHTtS3inCZiYykw4u5G4frbjVFqhkmJX12gSNCVeH3e";
const PEER_2: &str = "12D3KooW9xCm2jWjNVrwh51SWCQBMYdMyeU3NpT85QhLVkF6PcNM";
const PEER_3: &str = "12D3KooWA284B2yjxoAAqAFwwVj6eRQ8DogF3t8wdpMzZ8Hh8wh4";
const PEER_4: &str = "12D3KooWA63MKLSkZ6TPyFWTNo41wJAtTxtSiwpmCE2ecWLHtH1m";
const PEER_11: &str = "12D3KooWAZURKShphBXywtG1RtLSyRaEB5MrSPdW75hF2AeV7cGi";
const PEER_13: &str = "12D3KooWAhK1c3dqsn8SE4m2JUzHZB7kfPnFnX19Du2Z8vjgcGv8";
const PEER_21: &str = "12D3KooWBEfNkTMvcAWFLnm5nsbdtBHrcfTsB2VhhAMoby6UawVn";
const PEER_31: &str = "12D3KooWBurLBU22X9UWjhGA9rrpnw1V4FZsufMuHF2NBmYU4Gir";
const PEER_32: &str = "12D3KooWBymdKmV37SmjsnWfbABk5onFJQn5aj3iqeh2F9b4oc3Z";

fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/fixtures/chain/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn nodes_fixture(layout: Layout) -> Vec<u8> {
    fixture(&format!("nodes-{layout}.scale"))
}

fn peer(text: &str) -> PeerId {
    text.parse().unwrap()
}

fn addr(text: &str) -> Multiaddr {
    text.parse().unwrap()
}

#[test]
fn each_layout_decodes_its_golden_bytes_and_only_its_own() {
    for layout in Layout::ALL {
        let bytes = nodes_fixture(layout);
        let nodes = layout.decode_nodes(&bytes).unwrap();
        let ids: Vec<u32> = nodes.iter().map(|n| n.subnet_node_id).collect();
        assert_eq!(ids, [1, 2, 3, 4], "{layout}");
        let classes: Vec<NodeClass> = nodes.iter().map(|n| n.classification.node_class).collect();
        assert_eq!(
            classes,
            [
                NodeClass::Validator,
                NodeClass::Included,
                NodeClass::Idle,
                NodeClass::Registered
            ],
            "{layout}"
        );
        assert_eq!(nodes[0].classification.start_epoch, 3);
        assert_eq!(nodes[0].stake_balance, 10u128.pow(21) + 1);
        assert_eq!(nodes[0].hotkey, [0x21; 20]);
        assert_eq!(
            nodes[0].peer_info.as_ref().unwrap().peer_id,
            PEER_1.as_bytes()
        );
        // Detection finds this layout and no other.
        let (detected, _) = detect(&bytes).unwrap();
        assert_eq!(detected, Some(layout));
        for other in Layout::ALL.into_iter().filter(|l| *l != layout) {
            let error = other.decode_nodes(&bytes).unwrap_err();
            assert_eq!(error.layout, other);
        }
        // What the Rust side encodes decodes back the same.
        assert_eq!(
            layout.decode_nodes(&layout.encode_nodes(&nodes)).unwrap(),
            nodes
        );
    }
    let validator = Layout::Validator.decode_nodes(&nodes_fixture(Layout::Validator));
    assert_eq!(validator.unwrap()[0].validator_id, Some(101));
    // Only the stake-weight layout has a node without a main identity.
    let optional = Layout::ValidatorOptionalPeer
        .decode_nodes(&nodes_fixture(Layout::ValidatorOptionalPeer))
        .unwrap();
    assert_eq!(optional[1].peer_info, None);
}

#[test]
fn truncated_or_trailing_bytes_are_a_typed_layout_error() {
    let bytes = nodes_fixture(Layout::Coldkey);
    let truncated = Layout::Coldkey
        .decode_nodes(&bytes[..bytes.len() - 1])
        .unwrap_err();
    assert_eq!(truncated.layout, Layout::Coldkey);
    let mut garbage = bytes.clone();
    garbage.extend_from_slice(&[0xde, 0xad]);
    let trailing = Layout::Coldkey.decode_nodes(&garbage).unwrap_err();
    assert!(trailing.reason.contains("2 bytes left over"), "{trailing}");
    assert!(matches!(
        detect(&garbage),
        Err(ChainError::UnknownLayout { tried, .. }) if tried.len() == Layout::ALL.len()
    ));
    let bootnodes = fixture("bootnodes.scale");
    assert!(Bootnodes::from_scale(&bootnodes[..bootnodes.len() - 3]).is_err());
    // An empty list decodes as every layout and detects none.
    assert_eq!(detect(&[0]).unwrap(), (None, vec![]));
}

#[test]
fn identities_addresses_and_skipped_entries() {
    let bytes = nodes_fixture(Layout::Coldkey);
    let nodes = Layout::Coldkey.decode_nodes(&bytes).unwrap();
    let bootnodes = Bootnodes::from_scale(&fixture("bootnodes.scale")).unwrap();
    let snap = snapshot(Some(Layout::Coldkey), nodes, bootnodes).unwrap();

    // Node 1: three identities, the main one with its address (/p2p removed).
    let node1 = &snap.nodes[0];
    let roles: Vec<(Role, PeerId, Option<Multiaddr>)> = node1
        .identities
        .iter()
        .map(|i| (i.role, i.peer_id, i.address.clone()))
        .collect();
    assert_eq!(
        roles,
        [
            (
                Role::Main,
                peer(PEER_1),
                Some(addr("/ip4/127.0.0.1/tcp/4001"))
            ),
            (Role::Bootnode, peer(PEER_11), None),
            (Role::Client, peer(PEER_21), None),
        ]
    );
    // Node 2 registered without a multiaddr; node 3 with a DNS name.
    assert_eq!(snap.nodes[1].identities[0].address, None);
    assert_eq!(
        snap.nodes[2].identities[0].address,
        Some(addr("/dns4/node3.subnet.test/tcp/4003"))
    );
    assert_eq!(
        snap.nodes[2].identities[1].address,
        Some(addr("/ip6/::1/tcp/4013"))
    );
    // Node 4's QUIC address is refused; the node stays, without it.
    assert_eq!(snap.nodes[3].identities[0].peer_id, peer(PEER_4));
    assert_eq!(snap.nodes[3].identities[0].address, None);
    assert_eq!(snap.skipped.len(), 1, "{:?}", snap.skipped);
    assert_eq!(snap.skipped[0].subnet_node_id, 4);
    assert!(
        snap.skipped[0].reason.contains("quic-v1"),
        "{}",
        snap.skipped[0].reason
    );
    // Official bootnodes: one registered as a binary multiaddr, one as text.
    let official: Vec<(PeerId, Option<Multiaddr>)> = snap
        .bootnodes
        .iter()
        .map(|i| (i.peer_id, i.address.clone()))
        .collect();
    assert_eq!(
        official,
        [
            (peer(PEER_31), Some(addr("/ip4/127.0.0.1/tcp/4031"))),
            (peer(PEER_32), Some(addr("/ip4/127.0.0.1/tcp/4032"))),
        ]
    );

    // Members: every identity of nodes of at least the class, with its node
    // id; bootnodes with node id 0.
    let all = snap.members(NodeClass::Registered);
    let listed: Vec<(PeerId, u64)> = all.iter().map(|m| (m.peer_id, m.subnet_node_id)).collect();
    for expected in [
        (peer(PEER_1), 1),
        (peer(PEER_11), 1),
        (peer(PEER_21), 1),
        (peer(PEER_2), 2),
        (peer(PEER_3), 3),
        (peer(PEER_13), 3),
        (peer(PEER_4), 4),
        (peer(PEER_31), 0),
        (peer(PEER_32), 0),
    ] {
        assert!(listed.contains(&expected), "{expected:?} in {listed:?}");
    }
    assert_eq!(all.len(), 9);
    let mut included: Vec<u64> = snap
        .members(NodeClass::Included)
        .iter()
        .map(|m| m.subnet_node_id)
        .filter(|id| *id != 0)
        .collect();
    included.sort();
    assert_eq!(
        included,
        [1, 1, 1, 2],
        "only nodes 1 and 2 are Included or above"
    );
}

// --- A mock chain node ---

/// What the mock answers a method with.
#[derive(Clone)]
enum Answer {
    Bytes(Vec<u8>),
    Error(&'static str),
    Hang,
}

#[derive(Clone)]
struct Chain {
    nodes: Answer,
    bootnodes: Answer,
    /// Peer ids (base58 text) `network_proofOfStake` says yes to.
    staked: Vec<String>,
    /// `network_proofOfStake` answers with an error.
    stake_error: bool,
    /// Peer ids `network_proofOfStake` was asked about, in order.
    asked: Vec<String>,
    calls: usize,
}

struct Mock {
    chain: Arc<Mutex<Chain>>,
    port: u16,
    _handle: ServerHandle,
}

impl Mock {
    async fn start(nodes: Answer, bootnodes: Answer) -> Mock {
        let chain = Arc::new(Mutex::new(Chain {
            nodes,
            bootnodes,
            staked: Vec::new(),
            stake_error: false,
            asked: Vec::new(),
            calls: 0,
        }));
        let server = Server::builder().build("127.0.0.1:0").await.unwrap();
        let port = server.local_addr().unwrap().port();
        let mut module = RpcModule::new(chain.clone());
        for (method, pick) in [
            (
                "network_getSubnetNodesInfo",
                (|c: &Chain| c.nodes.clone()) as fn(&Chain) -> Answer,
            ),
            ("network_getBootnodes", |c: &Chain| c.bootnodes.clone()),
        ] {
            module
                .register_async_method(method, move |params, chain, _| async move {
                    let (subnet,): (u32,) = params.parse()?;
                    assert_eq!(subnet, 1, "the subnet id is the first parameter");
                    let answer = {
                        let mut chain = chain.lock().unwrap();
                        chain.calls += 1;
                        pick(&chain)
                    };
                    match answer {
                        Answer::Bytes(bytes) => Ok(bytes),
                        Answer::Error(message) => {
                            Err(ErrorObjectOwned::owned(1, message, None::<()>))
                        }
                        Answer::Hang => {
                            tokio::time::sleep(Duration::from_secs(30)).await;
                            Ok(Vec::new())
                        }
                    }
                })
                .unwrap();
        }
        module
            .register_method("network_proofOfStake", |params, chain, _| {
                let (subnet, peer_id, min_class): (u32, Vec<u8>, u8) = params.parse()?;
                assert_eq!((subnet, min_class), (1, 0));
                let text = String::from_utf8(peer_id).expect("peer ids travel as base58 text");
                let mut chain = chain.lock().unwrap();
                chain.asked.push(text.clone());
                if chain.stake_error {
                    return Err(ErrorObjectOwned::owned(
                        1,
                        "Unable to check stake",
                        None::<()>,
                    ));
                }
                Ok::<_, ErrorObjectOwned>(chain.staked.contains(&text))
            })
            .unwrap();
        let handle = server.start(module);
        Mock {
            chain,
            port,
            _handle: handle,
        }
    }

    fn url(&self, scheme: &str) -> String {
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    fn set_nodes(&self, answer: Answer) {
        self.chain.lock().unwrap().nodes = answer;
    }

    fn calls(&self) -> usize {
        self.chain.lock().unwrap().calls
    }

    fn asked_about(&self, peer: &PeerId) -> usize {
        let text = peer.to_base58();
        self.chain
            .lock()
            .unwrap()
            .asked
            .iter()
            .filter(|p| **p == text)
            .count()
    }
}

fn registry(url: String, timeout: Duration) -> HypertensorRegistry {
    let mut config = HypertensorConfig::new(url, 1);
    config.timeout = timeout;
    HypertensorRegistry::new(config).unwrap()
}

fn golden() -> (Answer, Answer) {
    (
        Answer::Bytes(nodes_fixture(Layout::Validator)),
        Answer::Bytes(fixture("bootnodes.scale")),
    )
}

#[test]
fn undialable_addresses_and_an_identity_listed_twice_are_skipped() {
    let one = peer(PEER_1);
    let info = |address: &str| PeerInfo {
        peer_id: PEER_1.as_bytes().to_vec(),
        multiaddr: Some(format!("{address}/p2p/{one}").into_bytes()),
    };
    for bad in [
        "/ip4/0.0.0.0/tcp/4001",
        "/ip4/127.0.0.1/tcp/0",
        "/dns4/host.test",
    ] {
        let snap = snapshot(None, vec![chain_node(1, info(bad))], Bootnodes::default()).unwrap();
        assert_eq!(snap.nodes[0].identities[0].address, None, "{bad}");
        assert_eq!(snap.skipped.len(), 1, "{bad}");
    }
    let twice = vec![
        chain_node(1, info("/ip4/127.0.0.1/tcp/4001")),
        chain_node(7, info("/ip4/127.0.0.1/tcp/4007")),
    ];
    let snap = snapshot(None, twice, Bootnodes::default()).unwrap();
    assert!(snap.nodes[1].identities.is_empty());
    assert!(
        snap.skipped[0]
            .reason
            .contains("already an identity of node 1"),
        "{:?}",
        snap.skipped
    );
    assert_eq!(snap.members(NodeClass::Registered)[0].subnet_node_id, 1);
}

#[tokio::test]
async fn a_detected_layout_is_detected_again_when_the_chain_changes_it() {
    let (_, bootnodes) = golden();
    let mock = Mock::start(Answer::Bytes(nodes_fixture(Layout::Coldkey)), bootnodes).await;
    let registry = registry(mock.url("http"), Duration::from_secs(10));
    assert_eq!(registry.read().await.unwrap().layout, Some(Layout::Coldkey));
    mock.set_nodes(Answer::Bytes(nodes_fixture(Layout::Validator)));
    assert_eq!(
        registry.read().await.unwrap().layout,
        Some(Layout::Validator)
    );
}

#[test]
fn registration_prints_what_to_register_and_refuses_what_the_chain_would_not() {
    let dir = common::temp_dir("registration");
    let key = dir.join("node.key");
    let peer = subnet::keys::generate(&key).unwrap().public().to_peer_id();
    let run = |address: &str| {
        std::process::Command::new(BIN)
            .args(["registration", "--key"])
            .arg(&key)
            .args(["--address", address])
            .output()
            .unwrap()
    };
    let output = run("/ip4/127.0.0.1/tcp/4001");
    assert!(output.status.success());
    let text = String::from_utf8(output.stdout).unwrap();
    let registered = addr(&format!("/ip4/127.0.0.1/tcp/4001/p2p/{peer}"));
    assert!(text.contains(&format!("multiaddr: {registered}")), "{text}");
    let hex = |bytes: &[u8]| -> String { bytes.iter().map(|b| format!("{b:02x}")).collect() };
    assert!(
        text.contains(&format!("0x{}", hex(&registered.to_vec()))),
        "{text}"
    );
    assert!(
        text.contains(&format!("0x{}", hex(peer.to_base58().as_bytes()))),
        "{text}"
    );
    for (bad, why) in [
        ("/ip4/127.0.0.1/udp/4001/quic-v1", "does not accept quic-v1"),
        ("/ip4/0.0.0.0/tcp/4001", "no host"),
        ("/ip4/127.0.0.1/tcp/0", "port 0"),
    ] {
        let output = run(bad);
        assert!(!output.status.success(), "{bad}");
        assert!(output.stdout.is_empty(), "{bad}: nothing printed on stdout");
        let error = String::from_utf8(output.stderr).unwrap();
        assert_eq!(error.lines().count(), 1, "{bad}: {error}");
        assert!(error.contains(why), "{bad}: {error}");
    }
}

#[tokio::test]
async fn reads_the_chain_over_http_and_websocket() {
    let (nodes, bootnodes) = golden();
    let mock = Mock::start(nodes, bootnodes).await;
    for scheme in ["http", "ws"] {
        let registry = registry(mock.url(scheme), Duration::from_secs(10));
        let snap = registry.read().await.unwrap();
        assert_eq!(snap.layout, Some(Layout::Validator), "{scheme}");
        assert_eq!(snap.nodes.len(), 4, "{scheme}");
        let members = registry.members().await.unwrap();
        assert_eq!(members.len(), 9, "{scheme}");
        // The same client asks again (the WebSocket stays connected).
        assert_eq!(registry.read().await.unwrap(), snap);
    }
    mock.chain.lock().unwrap().staked = vec![PEER_1.to_owned()];
    let registry = registry(mock.url("http"), Duration::from_secs(10));
    assert!(
        registry
            .proof_of_stake(&peer(PEER_1), NodeClass::Registered)
            .await
            .unwrap()
    );
    assert!(
        !registry
            .proof_of_stake(&peer(PEER_2), NodeClass::Registered)
            .await
            .unwrap()
    );
}

#[tokio::test]
async fn rpc_errors_timeouts_and_bad_layouts_are_typed() {
    let (_, bootnodes) = golden();
    let mock = Mock::start(Answer::Error("Unable to get subnet nodes"), bootnodes).await;
    for scheme in ["http", "ws"] {
        let registry = registry(mock.url(scheme), Duration::from_millis(500));
        let error = registry.read().await.unwrap_err();
        assert!(
            matches!(&error, ChainError::Rpc { method: "network_getSubnetNodesInfo", reason } if reason.contains("Unable to get subnet nodes")),
            "{scheme}: {error}"
        );
    }
    mock.set_nodes(Answer::Hang);
    for scheme in ["http", "ws"] {
        let registry = registry(mock.url(scheme), Duration::from_millis(500));
        let error = registry.read().await.unwrap_err();
        assert!(
            matches!(
                error,
                ChainError::Timeout {
                    method: "network_getSubnetNodesInfo",
                    ..
                }
            ),
            "{scheme}: {error}"
        );
    }
    // A configured layout that is not the chain's.
    mock.set_nodes(Answer::Bytes(nodes_fixture(Layout::Validator)));
    let mut config = HypertensorConfig::new(mock.url("http"), 1);
    config.layout = Some(Layout::Coldkey);
    let error = HypertensorRegistry::new(config)
        .unwrap()
        .read()
        .await
        .unwrap_err();
    assert!(
        matches!(&error, ChainError::Layout(e) if e.layout == Layout::Coldkey),
        "{error}"
    );
    // Nobody listening.
    let closed = registry(
        format!("http://127.0.0.1:{}", common::free_port()),
        Duration::from_secs(5),
    );
    assert!(matches!(
        closed.read().await.unwrap_err(),
        ChainError::Connect { .. }
    ));
    assert!(matches!(
        HypertensorRegistry::new(HypertensorConfig::new("ftp://chain", 1)),
        Err(ChainError::Url(_))
    ));
}

/// A builder with every source off, on loopback.
fn bare() -> NodeBuilder {
    Node::builder()
        .listen("/ip4/127.0.0.1/tcp/0".parse().unwrap())
        .peer_exchange(false)
        .kademlia(false)
}

fn peer_info(node: &Node, with_address: bool) -> PeerInfo {
    let id = node.peer_id();
    let address = node.addresses()[0].clone().with_p2p(id).unwrap();
    PeerInfo {
        peer_id: id.to_base58().into_bytes(),
        multiaddr: with_address.then(|| address.to_vec()),
    }
}

fn chain_node(subnet_node_id: u32, peer_info: PeerInfo) -> NodeInfo {
    NodeInfo {
        subnet_id: 1,
        subnet_node_id,
        validator_id: Some(subnet_node_id),
        hotkey: [subnet_node_id as u8; 20],
        peer_info: Some(peer_info),
        bootnode_peer_info: None,
        client_peer_info: None,
        classification: Classification {
            node_class: NodeClass::Included,
            start_epoch: 0,
        },
        stake_balance: 1,
    }
}

/// A node reading the mock chain with gating: a registered node with an
/// address is in its book (source registry, its node id), a registered node
/// without one is admitted, an unregistered one is refused; when the chain
/// fails, the last good read stays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gated_node_reads_its_members_from_the_chain() {
    let listed = bare().build().await.unwrap();
    listed.register(TaskProtocol).await.unwrap();
    let silent = bare().build().await.unwrap();
    let outsider = bare().build().await.unwrap();
    let nodes = vec![
        chain_node(7, peer_info(&listed, true)),
        chain_node(8, peer_info(&silent, false)),
    ];
    let mock = Mock::start(
        Answer::Bytes(Layout::Validator.encode_nodes(&nodes)),
        Answer::Bytes(Bootnodes::default().to_scale()),
    )
    .await;
    let (guarded, address) = gated(&mock, "ws", false, false).await;

    // The listed node is in the book, with its address and node id.
    eventually(WAIT, || async {
        guarded.address_book().lookup(&listed.peer_id()).is_some()
    })
    .await;
    let record = guarded.address_book().lookup(&listed.peer_id()).unwrap();
    assert_eq!(record.subnet_node_id, Some(7));
    assert_eq!(record.addresses[0].source, Source::Registry);
    let mut expected = listed.addresses()[0].clone();
    expected.pop(); // its /p2p suffix: the book keeps addresses without
    assert_eq!(record.addresses[0].address, expected);
    // The guarded node calls it by bare peer id: the chain gave the address.
    let answer = guarded
        .client::<TaskProtocol>()
        .call(listed.peer_id(), task("by chain"))
        .await
        .unwrap();
    assert_eq!(&answer.result[..], b"BY CHAIN");

    // Registered without a multiaddr: admitted.
    silent
        .client::<TaskProtocol>()
        .call(address.clone(), task("silent"))
        .await
        .expect("a registered node without a multiaddr is admitted");
    // Not registered: refused.
    assert!(
        outsider
            .client::<TaskProtocol>()
            .call(address.clone(), task("outsider"))
            .await
            .is_err()
    );

    // The chain fails (an RPC error, then bytes cut short): reads go on
    // failing, and the last good one stays.
    let good = Layout::Validator.encode_nodes(&nodes);
    for failure in [
        Answer::Error("Unable to get subnet nodes"),
        Answer::Bytes(good[..good.len() - 1].to_vec()),
    ] {
        mock.set_nodes(failure);
        let before = mock.calls();
        eventually(WAIT, || async { mock.calls() >= before + 6 }).await;
        assert!(guarded.address_book().lookup(&listed.peer_id()).is_some());
        silent
            .client::<TaskProtocol>()
            .call(address.clone(), task("still"))
            .await
            .expect("the last good read still admits it");
    }
    // The chain stops listing the first node: it leaves the book.
    mock.set_nodes(Answer::Bytes(Layout::Validator.encode_nodes(&nodes[1..])));
    eventually(WAIT, || async {
        guarded.address_book().lookup(&listed.peer_id()).is_none()
    })
    .await;
}

/// A node gated by the mock chain (`scheme`: http or ws), reading it every
/// 0.2 s, serving the task protocol.
async fn gated(
    mock: &Mock,
    scheme: &str,
    proof_of_stake: bool,
    fail_open: bool,
) -> (Node, Multiaddr) {
    let mut config = HypertensorConfig::new(mock.url(scheme), 1);
    config.timeout = Duration::from_secs(5);
    config.proof_of_stake = proof_of_stake;
    let node = bare()
        .registry(HypertensorRegistry::new(config).unwrap())
        .gating(true)
        .gating_fail_open(fail_open)
        .address_book(
            subnet::address_book::Config::default()
                .with_registry_refresh(Duration::from_millis(200)),
        )
        .build()
        .await
        .unwrap();
    node.register(TaskProtocol).await.unwrap();
    let address = node.addresses()[0].clone();
    (node, address)
}

async fn calls_through(caller: &Node, address: &Multiaddr) -> bool {
    caller
        .client::<TaskProtocol>()
        .call(address.clone(), task("knock"))
        .await
        .is_ok()
}

/// With proof of stake, a peer the node list omits is refused while the
/// chain is asked, then admitted if staked; the answers are kept, so a
/// refused peer's next attempt asks nothing; a question that fails refuses
/// (fail closed) or admits (fail open).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proof_of_stake_admits_a_staked_peer_the_node_list_omits() {
    let mock = Mock::start(
        Answer::Bytes(Layout::Validator.encode_nodes(&[])),
        Answer::Bytes(Bootnodes::default().to_scale()),
    )
    .await;
    let staked = bare().build().await.unwrap();
    let outsider = bare().build().await.unwrap();
    mock.chain.lock().unwrap().staked = vec![staked.peer_id().to_base58()];
    let (_guarded, address) = gated(&mock, "http", true, false).await;

    eventually(WAIT, || calls_through(&staked, &address)).await;
    assert!(mock.asked_about(&staked.peer_id()) >= 1);
    assert!(!calls_through(&outsider, &address).await);
    eventually(WAIT, || async {
        mock.asked_about(&outsider.peer_id()) == 1
    })
    .await;
    // The answer is kept: refused again without asking.
    assert!(!calls_through(&outsider, &address).await);
    assert!(!calls_through(&outsider, &address).await);
    assert_eq!(mock.asked_about(&outsider.peer_id()), 1);

    // The chain cannot answer: fail closed refuses, fail open admits. Both
    // nodes first read a list (one member with an address, to see the read
    // land), so that the open one is past its open start.
    mock.chain.lock().unwrap().stake_error = true;
    mock.set_nodes(Answer::Bytes(
        Layout::Validator.encode_nodes(&[chain_node(3, peer_info(&staked, true))]),
    ));
    let (closed, closed_address) = gated(&mock, "http", true, false).await;
    let (open, open_address) = gated(&mock, "http", true, true).await;
    for node in [&closed, &open] {
        eventually(WAIT, || async {
            node.address_book().lookup(&staked.peer_id()).is_some()
        })
        .await;
    }
    let newcomer = bare().build().await.unwrap();
    assert!(!calls_through(&newcomer, &closed_address).await);
    assert!(
        !calls_through(&newcomer, &open_address).await,
        "asked first"
    );
    eventually(WAIT, || async {
        mock.asked_about(&newcomer.peer_id()) >= 2
    })
    .await;
    assert!(!calls_through(&newcomer, &closed_address).await);
    eventually(WAIT, || calls_through(&newcomer, &open_address)).await;
}

/// Fail open admits everyone until the chain is first read, then closes
/// the connections of peers it does not list; fail closed admits nobody
/// meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_open_admits_everyone_until_the_first_read() {
    let mock = Mock::start(
        Answer::Error("Unable to get subnet nodes"),
        Answer::Bytes(Bootnodes::default().to_scale()),
    )
    .await;
    let (closed, closed_address) = gated(&mock, "http", false, false).await;
    let (open, open_address) = gated(&mock, "http", false, true).await;
    let caller = bare().build().await.unwrap();
    assert!(calls_through(&caller, &open_address).await);
    assert!(!calls_through(&caller, &closed_address).await);
    assert!(
        open.connected_peers()
            .await
            .unwrap()
            .contains(&caller.peer_id())
    );
    drop(closed);

    // The chain answers, without the caller: its connection is closed.
    mock.set_nodes(Answer::Bytes(Layout::Validator.encode_nodes(&[])));
    eventually(WAIT, || async {
        !open
            .connected_peers()
            .await
            .unwrap()
            .contains(&caller.peer_id())
    })
    .await;
    assert!(!calls_through(&caller, &open_address).await);
}

const BIN: &str = env!("CARGO_BIN_EXE_subnet");

/// `subnet peers` as the member in `key`, or as a new identity.
async fn peers(address: &str, key: Option<&std::path::Path>) -> std::process::Output {
    let mut command = tokio::process::Command::new(BIN);
    command.args(["peers", address]);
    if let Some(key) = key {
        command.arg("--key").arg(key);
    }
    command.output().await.unwrap()
}

/// The binary: `subnet node --chain-rpc` (an HTTP and a WebSocket URL) with
/// `--gating` lists the registered node in `subnet peers --key <a member's
/// key>` with source `registry` and its node id, and refuses the same
/// question from an identity the chain does not list.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subnet_node_reads_the_chain_and_gates_by_it() {
    let dir = common::temp_dir("chain-cli");
    let member_key = dir.join("member.key");
    let member = subnet::keys::generate(&member_key).unwrap();
    let listed = bare().build().await.unwrap();
    let nodes = vec![
        chain_node(7, peer_info(&listed, true)),
        chain_node(
            9,
            PeerInfo {
                peer_id: member.public().to_peer_id().to_base58().into_bytes(),
                multiaddr: None,
            },
        ),
    ];
    let mock = Mock::start(
        Answer::Bytes(Layout::Validator.encode_nodes(&nodes)),
        Answer::Bytes(Bootnodes::default().to_scale()),
    )
    .await;
    for scheme in ["http", "ws"] {
        let url = mock.url(scheme);
        let (child, address) = common::spawn_listening(std::process::Command::new(BIN).args([
            "node",
            "--chain-rpc",
            &url,
            "--subnet-id",
            "1",
            "--gating",
            "--no-kademlia",
            "--no-peer-exchange",
            "--no-heartbeat",
        ]));
        let _node = common::KillOnDrop(child);
        let listed_id = listed.peer_id().to_string();
        eventually(WAIT, || async {
            let output = peers(&address, Some(&member_key)).await;
            let text = String::from_utf8_lossy(&output.stdout).into_owned();
            output.status.success()
                && text.lines().any(|line| {
                    line.contains(&listed_id) && line.contains("registry") && line.contains(" 7 ")
                })
        })
        .await;
        let outsider = peers(&address, None).await;
        assert!(
            !outsider.status.success(),
            "{scheme}: an outsider is refused"
        );
        // `subnet call --key` calls as the member too.
        let called = tokio::process::Command::new(BIN)
            .args(["call", &address, "hello", "--key"])
            .arg(&member_key)
            .output()
            .await
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&called.stdout).trim(),
            "HELLO",
            "{scheme}"
        );
    }
}

/// The binary with `--chain-proof-of-stake`: a peer the node list omits but
/// the chain says is staked is admitted after its first attempt; one the
/// chain says is not stays refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subnet_node_asks_the_chain_about_a_peer_it_does_not_list() {
    let dir = common::temp_dir("chain-pos-cli");
    let staker_key = dir.join("staker.key");
    let staker = subnet::keys::generate(&staker_key).unwrap();
    let stranger_key = dir.join("stranger.key");
    let stranger = subnet::keys::generate(&stranger_key).unwrap();
    let mock = Mock::start(
        Answer::Bytes(Layout::Validator.encode_nodes(&[])),
        Answer::Bytes(Bootnodes::default().to_scale()),
    )
    .await;
    mock.chain.lock().unwrap().staked = vec![staker.public().to_peer_id().to_base58()];
    let url = mock.url("ws");
    let (child, address) = common::spawn_listening(std::process::Command::new(BIN).args([
        "node",
        "--chain-rpc",
        &url,
        "--subnet-id",
        "1",
        "--gating",
        "--chain-proof-of-stake",
        "--no-kademlia",
        "--no-peer-exchange",
        "--no-heartbeat",
    ]));
    let _node = common::KillOnDrop(child);
    eventually(WAIT, || async {
        peers(&address, Some(&staker_key)).await.status.success()
    })
    .await;
    let stranger_id = stranger.public().to_peer_id();
    assert!(!peers(&address, Some(&stranger_key)).await.status.success());
    eventually(WAIT, || async { mock.asked_about(&stranger_id) >= 1 }).await;
    assert!(!peers(&address, Some(&stranger_key)).await.status.success());
}
