create table fruit (name text, price integer);
insert into fruit values ('pear', 3), ('apple', 1), ('fig', 2);
