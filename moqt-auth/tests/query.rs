//! The token in a connect URL's query, and splitting a request target.

use moqt_auth::{jwt_from_query, split_path_query};

#[test]
fn jwt_parameter() {
    assert_eq!(jwt_from_query("jwt=abc").as_deref(), Some("abc"));
    assert_eq!(jwt_from_query("?jwt=abc").as_deref(), Some("abc"));
    assert_eq!(jwt_from_query("a=1&jwt=x.y.z&b=2").as_deref(), Some("x.y.z"));
    // The last non-empty one counts.
    assert_eq!(jwt_from_query("jwt=old&jwt=new").as_deref(), Some("new"));
    assert_eq!(jwt_from_query("jwt=old&jwt=").as_deref(), Some("old"));
    // Percent-encoding is undone.
    assert_eq!(jwt_from_query("jwt=a%2Eb%2Ec").as_deref(), Some("a.b.c"));
    for none in ["", "jwt=", "jwt", "token=abc", "xjwt=abc", "JWT=abc"] {
        assert_eq!(jwt_from_query(none), None, "{none}");
    }
}

#[test]
fn target_split() {
    assert_eq!(split_path_query("/room?jwt=a"), ("/room", Some("jwt=a")));
    assert_eq!(split_path_query("/room"), ("/room", None));
    assert_eq!(split_path_query("/?"), ("/", Some("")));
    assert_eq!(split_path_query("?jwt=a?b"), ("", Some("jwt=a?b")));
}
