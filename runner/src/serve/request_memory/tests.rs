//! `request_memory`'s rules: admission in arrival order, waits and their bounds, refusals, and the room
//! kept for the one growing body.

use super::*;
use std::sync::Mutex;

#[tokio::test]
async fn a_body_waits_until_others_free_enough_then_is_admitted() {
    let memory = RequestMemory::new(Some(10 << 10));
    let mut first = memory.held();
    first.admit(6 << 10).await.unwrap();
    first.count(1);
    let mut second = memory.held();
    let waiting = tokio::spawn(async move { second.admit(4 << 10).await.map(|()| second) });
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(
        !waiting.is_finished(),
        "4 KiB were asked with less than 4 free"
    );
    drop(first);
    let second = waiting.await.unwrap().unwrap();
    assert_eq!(second.bytes, 4 << 10);
    assert_eq!(memory.used(), 4 << 10);
    drop(second);
    assert_eq!(memory.used(), 0);
}

#[tokio::test]
async fn what_is_made_while_answering_is_counted_without_waiting_and_holds_off_new_bodies() {
    let memory = RequestMemory::waiting(Some(10 << 10), Duration::from_millis(100));
    let mut answering = memory.held();
    answering.admit(8 << 10).await.unwrap();
    answering.count(8 << 10);
    assert_eq!(memory.used(), 16 << 10);
    let refused = memory.held().admit(1).await.unwrap_err();
    assert!(matches!(refused, ServeError::Unavailable(_)), "{refused}");
    assert!(
        refused.to_string().contains("--max-in-flight-mib"),
        "{refused}"
    );
    drop(answering);
    memory.held().admit(10 << 10).await.unwrap();
}

#[tokio::test]
async fn a_body_larger_than_the_whole_limit_is_refused_at_once() {
    let memory = RequestMemory::new(Some(10 << 10));
    let refused = memory.held().admit(11 << 10).await.unwrap_err();
    assert!(matches!(refused, ServeError::BadRequest(_)), "{refused}");
    assert!(
        refused.to_string().contains("--max-in-flight-mib"),
        "{refused}"
    );
    assert_eq!(memory.used(), 0);
}

#[tokio::test]
async fn requests_are_admitted_in_arrival_order() {
    let memory = RequestMemory::new(Some(10 << 10));
    let mut holder = memory.held();
    holder.admit(8 << 10).await.unwrap();
    let order = Arc::new(Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for (name, bytes) in [("large", 10u64 << 10), ("small", 1 << 10)] {
        let (memory, order) = (memory.clone(), order.clone());
        tasks.push(tokio::spawn(async move {
            let mut held = memory.held();
            held.admit(bytes).await.unwrap();
            order.lock().unwrap().push(name);
        }));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The small one would fit beside the holder, but the large one came first.
    assert!(order.lock().unwrap().is_empty());
    drop(holder);
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(*order.lock().unwrap(), ["large", "small"]);
}

fn waiting_for_a_byte(
    memory: &RequestMemory,
    requests: usize,
) -> Vec<tokio::task::JoinHandle<Result<(), ServeError>>> {
    (0..requests)
        .map(|_| {
            let memory = memory.clone();
            tokio::spawn(async move { memory.held().admit(1).await })
        })
        .collect()
}

#[tokio::test(start_paused = true)]
async fn past_the_bound_on_waiting_requests_the_next_is_refused_at_once() {
    let memory = RequestMemory::new(Some(10 << 10));
    assert_eq!(max_waiting(10 << 10), 16);
    let mut holder = memory.held();
    holder.admit(10 << 10).await.unwrap();
    let waiting = waiting_for_a_byte(&memory, 16);
    tokio::time::sleep(Duration::from_millis(10)).await;
    let started = Instant::now();
    let refused = memory.held().admit(1).await.unwrap_err();
    assert_eq!(started.elapsed(), Duration::ZERO, "refused without waiting");
    assert!(matches!(refused, ServeError::Unavailable(_)), "{refused}");
    assert!(
        refused.to_string().starts_with("16 requests already wait")
            && refused.to_string().contains("--max-in-flight-mib"),
        "{refused}"
    );
    drop(holder);
    for admitted in waiting {
        admitted.await.unwrap().unwrap();
    }
    // Their places given back: as many may wait again.
    let mut holder = memory.held();
    holder.admit(10 << 10).await.unwrap();
    let waiting = waiting_for_a_byte(&memory, 16);
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert!(waiting.iter().all(|w| !w.is_finished()));
    drop(holder);
    for admitted in waiting {
        admitted.await.unwrap().unwrap();
    }
}

#[test]
fn the_bound_on_waiting_requests_follows_the_limit() {
    assert_eq!(max_waiting(0), 16);
    assert_eq!(max_waiting(100 << 20), 47);
    assert_eq!(max_waiting(1 << 30), 481);
    let huge = u64::MAX / 8 / UNREAD_WHILE_WAITING;
    assert_eq!(
        max_waiting(u64::MAX) as u64,
        huge.min(Semaphore::MAX_PERMITS as u64)
    );
}

#[tokio::test]
async fn decoded_inputs_past_the_whole_limit_are_refused_and_not_counted() {
    let memory = RequestMemory::new(Some(10 << 10));
    let mut held = memory.held();
    held.admit(4 << 10).await.unwrap();
    held.count_within_limit(6 << 10, "inputs").unwrap();
    assert_eq!(memory.used(), 10 << 10);
    let refused = held.count_within_limit(1, "inputs").unwrap_err();
    assert!(matches!(refused, ServeError::BadRequest(_)), "{refused}");
    assert!(
        refused.to_string().contains("--max-in-flight-mib"),
        "{refused}"
    );
    assert_eq!(memory.used(), 10 << 10);
    drop(held);
    assert_eq!(memory.used(), 0);
    RequestMemory::new(None)
        .held()
        .count_within_limit(usize::MAX, "inputs")
        .unwrap();
}

#[tokio::test]
async fn one_body_that_holds_part_of_itself_waits_to_grow_and_the_others_are_refused() {
    let memory = RequestMemory::new(Some(10 << 10));
    let (mut first, mut second) = (memory.held(), memory.held());
    first.grow(4 << 10).await.unwrap();
    second.grow(4 << 10).await.unwrap();
    let waiting = tokio::spawn(async move { second.grow(4 << 10).await.map(|()| second) });
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(!waiting.is_finished(), "4 KiB asked with 2 free");
    // 2 KiB are free, but the waiting body needs 4 of the 6 it would have: a new body waits.
    let mut new_body = memory.held();
    let admitted = tokio::time::timeout(Duration::from_millis(50), new_body.admit(2 << 10));
    assert!(admitted.await.is_err(), "admitted into the kept room");
    // Another body that holds part of itself cannot wait beside it: refused at once.
    let refused = first.grow(3 << 10).await.unwrap_err();
    assert!(matches!(refused, ServeError::Unavailable(_)), "{refused}");
    assert!(refused.to_string().contains("Content-Length"), "{refused}");
    drop(first);
    let second = waiting.await.unwrap().unwrap();
    assert_eq!(memory.used(), 8 << 10);
    // Its wait over, its room is no longer kept: a new body takes what is free.
    memory.held().admit(2 << 10).await.unwrap();
    let too_large = memory.held().grow(11 << 10).await.unwrap_err();
    assert!(
        matches!(too_large, ServeError::BadRequest(_)),
        "{too_large}"
    );
    drop(second);
    assert_eq!(memory.used(), 0);
}

/// Under 10 KiB with a 1 s wait: a request holding 8 KiB, and a chunked body holding 1 KiB of itself.
async fn eight_held_and_one_growing() -> (RequestMemory, Held, Held) {
    let memory = RequestMemory::waiting(Some(10 << 10), Duration::from_secs(1));
    let mut holder = memory.held();
    holder.admit(8 << 10).await.unwrap();
    let mut growing = memory.held();
    growing.grow(1 << 10).await.unwrap();
    (memory, holder, growing)
}

#[tokio::test(start_paused = true)]
async fn a_growing_body_that_waits_in_vain_is_refused_and_keeps_no_room() {
    let (memory, holder, mut growing) = eight_held_and_one_growing().await;
    let started = Instant::now();
    let refused = growing.grow(2 << 10).await.unwrap_err();
    assert_eq!(started.elapsed(), Duration::from_secs(1));
    assert!(refused.to_string().contains("within 1 s"), "{refused}");
    memory.held().admit(1 << 10).await.unwrap();
    // A wait given up by its request (the client gone) keeps no room either.
    let mut gone = memory.held();
    let wait = tokio::spawn(async move { gone.grow(2 << 10).await });
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert_eq!(memory.kept_for_growing(), 2 << 10, "it waits");
    wait.abort();
    let _ = wait.await;
    drop(holder);
    memory.held().admit(9 << 10).await.unwrap();
}

#[tokio::test]
async fn no_limit_holds_nothing() {
    let memory = RequestMemory::new(None);
    let mut held = memory.held();
    held.admit(u64::MAX).await.unwrap();
    held.count(usize::MAX);
    assert_eq!(held.bytes, 0);
}

#[tokio::test(start_paused = true)]
async fn a_growing_body_waits_no_longer_than_its_wait_in_all() {
    let (memory, holder, mut growing) = eight_held_and_one_growing().await;
    let started = Instant::now();
    let freed = async {
        tokio::time::sleep(Duration::from_millis(600)).await;
        drop(holder);
    };
    let (grown, ()) = tokio::join!(growing.grow(2 << 10), freed);
    grown.unwrap();
    assert_eq!(started.elapsed(), Duration::from_millis(600));
    // Its first wait took 0.6 s of its 1 s: the next, with nothing freed, ends 0.4 s later.
    let mut other = memory.held();
    other.admit(7 << 10).await.unwrap();
    let waited = Instant::now();
    growing.grow(1 << 10).await.unwrap_err();
    assert_eq!(waited.elapsed(), Duration::from_millis(400));
}
