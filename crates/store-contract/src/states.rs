//! Shared instance state properties: records raise the sequence number, the owner's write
//! never hides an order it has not seen, and everything recorded is listed.

use console::{InstanceState, Order, SharedState};

use crate::{Backend, instance};

/// Every record raises the sequence number and replaces state and order; `states` lists them.
pub async fn states_records_raise_the_sequence(b: &impl Backend) {
    let s = b.states();
    assert!(s.states().await.unwrap().is_empty());
    let one = s
        .record(&instance(1), InstanceState::Pending, Some(Order::Start))
        .await
        .unwrap();
    let two = s
        .record(
            &instance(1),
            InstanceState::Stopping,
            Some(Order::ForceStop),
        )
        .await
        .unwrap();
    assert!(two > one, "{two} after {one}");
    s.record(&instance(2), InstanceState::Running, None)
        .await
        .unwrap();
    let all = s.states().await.unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(
        all[&instance(1)],
        SharedState {
            state: InstanceState::Stopping,
            seq: two,
            order: Some(Order::ForceStop)
        }
    );
    assert_eq!(all[&instance(2)].order, None);
}

/// The owner's write lands while no newer record came, keeps the sequence number and order,
/// and is refused once another record came (an order it has not carried out yet).
pub async fn states_publish_needs_the_latest_sequence(b: &impl Backend) {
    let s = b.states();
    let i = instance(3);
    // Never recorded: only a writer that has seen nothing (0) writes.
    assert!(!s.publish(&i, InstanceState::Running, 4).await.unwrap());
    assert!(s.publish(&i, InstanceState::Running, 0).await.unwrap());
    let seq = s
        .record(&i, InstanceState::Stopping, Some(Order::Stop))
        .await
        .unwrap();
    // Written with the older sequence number: refused, the order stays visible.
    assert!(!s.publish(&i, InstanceState::Running, 0).await.unwrap());
    let now = s.states().await.unwrap()[&i];
    assert_eq!(
        (now.state, now.order),
        (InstanceState::Stopping, Some(Order::Stop))
    );
    // Once seen, the owner's state replaces the intent, and the record is otherwise unchanged.
    assert!(s.publish(&i, InstanceState::Stopped, seq).await.unwrap());
    assert_eq!(
        s.states().await.unwrap()[&i],
        SharedState {
            state: InstanceState::Stopped,
            seq,
            order: Some(Order::Stop)
        }
    );
}

/// Concurrent records each get their own sequence number.
pub async fn states_concurrent_records_get_distinct_sequences(b: &impl Backend) {
    let s = b.states();
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            s.record(&instance(4), InstanceState::Pending, Some(Order::Reboot))
                .await
                .unwrap()
        }));
    }
    let mut seqs = Vec::new();
    for t in tasks {
        seqs.push(t.await.unwrap());
    }
    seqs.sort_unstable();
    seqs.dedup();
    assert_eq!(seqs.len(), 16, "{seqs:?}");
    assert_eq!(s.states().await.unwrap()[&instance(4)].seq, seqs[15]);
}
