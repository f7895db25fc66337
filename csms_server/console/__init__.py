"""``csms-server console``: a live web page of the stations, their messages, and commands to send them.

``model`` (pure) keeps what the topics say; ``follower`` reads them without a consumer group;
``access`` decides who may use the page; ``web`` serves it; ``commands`` lists what the form offers.
"""
